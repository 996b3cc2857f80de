#pragma once

/// Every ready-made network of mantissa::nn in one include.
#include "layers/models/AlexNet.h"
#include "layers/models/BasicBlock.h"
#include "layers/models/Bottleneck.h"
#include "layers/models/CifarResNet.h"
#include "layers/models/Dcgan.h"
#include "layers/models/Model.h"
#include "layers/models/ResNet.h"
