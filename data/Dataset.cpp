#include "data/Dataset.h"

#include "core/Error.h"

namespace mantissa::data {

const char* splitName(Split split) { return split == Split::Train ? "train" : "test"; }

void Dataset::checkIndex(int64_t index) const {
  MANTISSA_CHECK(index >= 0 && index < size(), name(), ": index ", index, " out of range [0, ",
                 size(), ")");
}

Subset::Subset(const Dataset& base, std::vector<int64_t> indices)
    : base_(base), indices_(std::move(indices)) {
  for (size_t i = 0; i < indices_.size(); ++i) {
    MANTISSA_CHECK(indices_[i] >= 0 && indices_[i] < base_.size(), "Subset of ", base_.name(),
                   ": entry ", i, " is index ", indices_[i], ", out of range [0, ", base_.size(),
                   ")");
  }
}

Subset Subset::range(const Dataset& base, int64_t begin, int64_t end) {
  MANTISSA_CHECK(0 <= begin && begin <= end && end <= base.size(), "Subset::range of ", base.name(),
                 ": [", begin, ", ", end, ") is not within [0, ", base.size(), "]");
  std::vector<int64_t> indices;
  indices.reserve(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) indices.push_back(i);
  return Subset(base, std::move(indices));
}

Example Subset::get(int64_t index) const { return base_.get(baseIndex(index)); }

int64_t Subset::baseIndex(int64_t index) const {
  checkIndex(index);
  return indices_[static_cast<size_t>(index)];
}

std::string Subset::name() const {
  return "Subset(" + base_.name() + ", " + std::to_string(indices_.size()) + ")";
}

}  // namespace mantissa::data
