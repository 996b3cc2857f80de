#include "layers/BatchNorm.h"

#include <sstream>

#include "core/ops/Norm.h"

namespace mantissa::nn {

BatchNorm::BatchNorm(std::string typeName, int64_t numFeatures, BatchNormOptions opts)
    : Module(std::move(typeName)), c_(numFeatures), opts_(opts) {
  MANTISSA_CHECK(numFeatures > 0, this->typeName(), ": numFeatures must be positive, got ",
                 numFeatures);
  MANTISSA_CHECK(opts.eps > 0, this->typeName(), ": eps must be positive, got ", opts.eps);
  MANTISSA_CHECK(!opts.momentum || (*opts.momentum >= 0 && *opts.momentum <= 1), this->typeName(),
                 ": momentum ", opts.momentum.value_or(0), " outside [0, 1]");
  if (opts.affine) {
    weight_ = registerParameter("weight", Tensor::ones({numFeatures}));
    bias_ = registerParameter("bias", Tensor::zeros({numFeatures}));
  }
  if (opts.trackRunningStats) {
    runningMean_ = registerBuffer("running_mean", Tensor::zeros({numFeatures}));
    runningVar_ = registerBuffer("running_var", Tensor::ones({numFeatures}));
    numBatches_ = registerBuffer("num_batches_tracked", Tensor::zeros({}, DType::I64));
  }
}

int64_t BatchNorm::numBatchesTracked() const {
  return numBatches_.defined() ? numBatches_.item<int64_t>() : 0;
}

Tensor BatchNorm::normalize(const Tensor& x, bool relu, const Tensor& residual,
                            std::optional<float> leakySlope) {
  MANTISSA_CHECK(x.size(1) == c_, typeName(), "(", c_, "): input of shape ", toString(x.shape()),
                 " has ", x.size(1), " channels");
  const bool tracking = opts_.trackRunningStats;
  double momentum = opts_.momentum.value_or(0.0);
  if (isTraining() && tracking) {
    int64_t& count = numBatches_.data<int64_t>()[0];
    ++count;
    // PyTorch's momentum=None: the running statistics are the plain average of all batches.
    if (!opts_.momentum) momentum = 1.0 / static_cast<double>(count);
  }
  // Without running statistics both modes normalise with the batch (PyTorch's bn_training).
  const bool useBatch = isTraining() || !tracking;
  const mantissa::BatchNormOptions o{.training = useBatch, .momentum = momentum, .eps = opts_.eps};
  const Tensor rm = tracking ? runningMean_ : Tensor(), rv = tracking ? runningVar_ : Tensor();
  if (leakySlope) return batchNormLeakyRelu(x, weight_, bias_, rm, rv, *leakySlope, o);
  if (residual.defined()) return batchNormAddRelu(x, weight_, bias_, rm, rv, residual, o);
  return relu ? batchNormRelu(x, weight_, bias_, rm, rv, o)
              : batchNorm(x, weight_, bias_, rm, rv, o);
}

std::string BatchNorm::extraRepr() const {
  std::ostringstream os;
  os << c_ << ", eps=" << opts_.eps << ", momentum=";
  if (opts_.momentum) {
    os << *opts_.momentum;
  } else {
    os << "None";
  }
  if (!opts_.affine) os << ", affine=false";
  if (!opts_.trackRunningStats) os << ", track_running_stats=false";
  return os.str();
}

}  // namespace mantissa::nn
