#pragma once

/// Everything of mantissa::data in one include: datasets, transforms and the loader.
#include "data/Cifar.h"
#include "data/DataLoader.h"
#include "data/Dataset.h"
#include "data/IdxDataset.h"
#include "data/ImageFolder.h"
#include "data/SyntheticDataset.h"
#include "data/Transforms.h"
