#include "data/SyntheticDataset.h"

#include <algorithm>

#include "core/Error.h"
#include "core/Rng.h"

namespace mantissa::data {

namespace {
// Stream ids under the seed: patterns and per-sample noise never share random numbers.
constexpr uint64_t kPatternStream = 1, kNoiseStream = 2;
}  // namespace

SyntheticDataset::SyntheticDataset(SyntheticOptions options) : options_(std::move(options)) {
  MANTISSA_CHECK(options_.size >= 0, "SyntheticDataset: size ", options_.size, " < 0");
  MANTISSA_CHECK(options_.numClasses >= 1, "SyntheticDataset: numClasses ", options_.numClasses,
                 " < 1");
  MANTISSA_CHECK(!options_.shape.empty(), "SyntheticDataset: empty sample shape");
  for (int64_t d : options_.shape) {
    MANTISSA_CHECK(d >= 1, "SyntheticDataset: sample shape ", toString(options_.shape),
                   " has an empty axis");
  }
  MANTISSA_CHECK(options_.noise >= 0, "SyntheticDataset: noise ", options_.noise, " < 0");
  numel_ = numelOf(options_.shape);
  patterns_.resize(static_cast<size_t>(options_.numClasses * numel_));
  Rng rng = Rng(options_.seed).fork(kPatternStream);
  for (float& v : patterns_) v = 2.f * rng.uniform() - 1.f;
}

Example SyntheticDataset::get(int64_t index) const {
  checkIndex(index);
  const int64_t label = index % options_.numClasses;
  Tensor image = Tensor::empty(options_.shape);
  float* out = image.data<float>();
  const float* p = patterns_.data() + label * numel_;
  Rng rng = Rng(options_.seed).fork(kNoiseStream).fork(static_cast<uint64_t>(index));
  for (int64_t k = 0; k < numel_; ++k) out[k] = p[k] + options_.noise * rng.normal();
  return {std::move(image), label};
}

std::string SyntheticDataset::name() const {
  return "SyntheticDataset(" + std::to_string(options_.size) + ", " +
         std::to_string(options_.numClasses) + " classes, " + toString(options_.shape) + ")";
}

Tensor SyntheticDataset::pattern(int64_t label) const {
  MANTISSA_CHECK(label >= 0 && label < options_.numClasses, "SyntheticDataset: label ", label,
                 " out of range [0, ", options_.numClasses, ")");
  Tensor t = Tensor::empty(options_.shape);
  std::copy_n(patterns_.data() + label * numel_, numel_, t.data<float>());
  return t;
}

}  // namespace mantissa::data
