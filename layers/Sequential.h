#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "layers/Module.h"

namespace mantissa::nn {

/// A chain of modules, PyTorch `nn.Sequential`: children are named "0", "1", ... in order, so
/// state names read `features.0.weight`; forward feeds each child's output to the next.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> modules);

  /// Appends `module` under the next index and returns it (typed, for keeping a handle).
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    MANTISSA_CHECK(module != nullptr, "Sequential: push_back of a null module");
    registerModule(std::to_string(modules_.size()), module);
    modules_.push_back(module);
    return module;
  }

  /// Runs the children in order; an empty Sequential is the identity.
  Tensor forward(const Tensor& x) override;

  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  /// The child at `index`; throws when out of range.
  const ModulePtr& at(size_t index) const;
  const ModulePtr& operator[](size_t index) const { return at(index); }
  /// The child at `index` as its concrete type; throws when out of range or of another type.
  template <class M>
  std::shared_ptr<M> atAs(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>(at(index));
    MANTISSA_CHECK(m != nullptr, "Sequential: child ", index, " is a ", at(index)->typeName());
    return m;
  }

 private:
  std::vector<ModulePtr> modules_;
};

}  // namespace mantissa::nn
