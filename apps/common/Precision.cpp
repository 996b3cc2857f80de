#include "apps/common/Precision.h"

#include <set>

namespace mantissa::train {

void applyPrecision(nn::Module& model, optim::Optimizer* optimizer,
                    const formats::PrecisionSchedule& schedule, int64_t epoch, int64_t numEpochs,
                    uint64_t seed) {
  model.applySchedule(schedule, epoch, numEpochs);
  model.setQuantSeed(seed);
  if (!optimizer) return;
  std::set<std::string> withMaster;
  for (auto& [name, master] : model.namedMasterFormats()) {
    optimizer->setMasterFormat(name, master.format, master.blockAxis, seed);
    withMaster.insert(name);
  }
  for (auto& [name, p] : optimizer->parameters()) {
    if (!withMaster.count(name)) optimizer->setMasterFormat(name, nullptr);
  }
}

}  // namespace mantissa::train
