#include "layers/Sequential.h"

namespace mantissa::nn {

Sequential::Sequential(std::initializer_list<ModulePtr> modules) : Module("Sequential") {
  for (const ModulePtr& m : modules) push_back(m);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const ModulePtr& m : modules_) h = m->forward(h);
  return h;
}

const ModulePtr& Sequential::at(size_t index) const {
  MANTISSA_CHECK(index < modules_.size(), "Sequential: index ", index, " out of range (size ",
                 modules_.size(), ")");
  return modules_[index];
}

}  // namespace mantissa::nn
