#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/Tensor.h"
#include "core/io/StateDict.h"
#include "formats/Format.h"

namespace mantissa::optim {

/// Parameters as (dotted name, tensor) pairs, e.g. {"layer1.0.conv1.weight", w}: what
/// `nn::Module::namedParameters()` returns. Names are the keys of all optimizer state.
using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

/// Base of all optimizers. It owns what every update rule shares, so a subclass writes only the
/// arithmetic of one parameter's update:
///  - the parameters, validated once (unique names without '/', contiguous F32 leaves);
///  - the iteration count and the learning rate (`lr()`, `setLr()`, driven by an LrSchedule);
///  - skipping parameters whose gradient is undefined (their state and step count stay put,
///    exactly as in PyTorch);
///  - per-parameter state keyed by parameter NAME (never by address or position), saved to
///    and strictly loaded from a StateDict (layout in docs/optim.md);
///  - the `master` format (FORMATS.md A.2): after a parameter's update the weight is snapped
///    in place onto its master format's grid, with a per-parameter FormatState that is saved
///    and loaded with the rest of the state.
/// Updates run under NoGradGuard, in place on the parameters' storage.
class Optimizer : public io::Stateful {
 public:
  ~Optimizer() override;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient, then the master snap of each one
  /// updated. Increments iteration() first.
  void step();
  /// Drops every parameter's gradient (the next backward writes fresh buffers).
  void zeroGrad();

  double lr() const { return lr_; }
  /// New learning rate for the next steps (>= 0, finite).
  void setLr(double lr);
  /// Number of step() calls so far (restored by loadState).
  int64_t iteration() const { return iteration_; }
  /// Short type name saved with the state ("sgd", "adam", "adamw", "rmsprop").
  const std::string& type() const { return type_; }
  const NamedParameters& parameters() const { return params_; }

  /// Number of updates parameter `name` has received (0 before its first gradient).
  int64_t paramStep(const std::string& name) const;
  /// State slot `slot` of parameter `name` ("momentum_buffer", "exp_avg", ...); undefined
  /// before the parameter's first update. For inspection; do not modify.
  Tensor slot(const std::string& name, const std::string& slot) const;

  /// Stores parameter `name` in `format` after each of its updates: the base calls
  /// `format->quantize(p, {.role = Role::Master, .blockAxis, .seed, .stream = streamOf(name +
  /// ".master"), .step = iteration() - 1, .pointName = name + ".master"}, state)` and writes
  /// the result into p. A null or identity (fp32) format removes the snap. Setting the format
  /// with the same spec again keeps its adaptive state (re-applying a policy is harmless);
  /// another spec starts from fresh `makeState()`.
  void setMasterFormat(const std::string& name, formats::FormatPtr format, int64_t blockAxis = -1,
                       uint64_t seed = 0);
  /// The master format of `name`, or null when the parameter is kept in FP32.
  formats::FormatPtr masterFormat(const std::string& name) const;
  /// The adaptive state of `name`'s master format (null for stateless formats or none set).
  const formats::FormatState* masterState(const std::string& name) const;

  /// Writes, under `prefix` (used verbatim, e.g. "optim/"): attrs `type`, `lr`, `step`; per
  /// parameter attr `<name>/step`, tensors `<name>/<slot>`, and for a master format attr
  /// `<name>/master/format` plus the format state under `<name>/master/state/`.
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  /// Strict: the type must match, every parameter's entries must be present with this
  /// parameter's shape, master format specs must equal the ones set, and no other key may
  /// exist under `prefix`. Errors name the key. On error the optimizer is unchanged.
  void loadState(const io::StateDict& in, const std::string& prefix) override;

 protected:
  using Slots = std::map<std::string, Tensor>;

  /// `type` is the saved type name; `lr` the initial learning rate.
  Optimizer(std::string type, NamedParameters params, double lr);

  /// Updates one parameter in place. `param` and `grad` are contiguous F32 of equal shape;
  /// `slots` is this parameter's state (empty before its first update, when the subclass
  /// creates exactly `slotNames()`); `step` counts this parameter's updates including this one.
  virtual void update(Tensor& param, const Tensor& grad, Slots& slots, int64_t step) = 0;
  /// The slots a parameter has after its first update (depends on the options only).
  virtual std::vector<std::string> slotNames() const = 0;

  /// A zero-filled F32 tensor shaped like `like` (for lazily created slots).
  static Tensor zerosLike(const Tensor& like) { return Tensor::zeros(like.shape()); }

 private:
  struct Master {
    formats::FormatPtr format;
    std::unique_ptr<formats::FormatState> state;
    int64_t blockAxis = -1;
    uint64_t seed = 0;
  };
  struct ParamState {
    int64_t step = 0;
    Slots slots;
    Master master;
  };

  ParamState& stateOf(const std::string& name, const char* what);
  const ParamState& stateOf(const std::string& name, const char* what) const;
  void snapToMaster(const std::string& name, Tensor& param, Master& master);

  std::string type_;
  NamedParameters params_;
  std::map<std::string, ParamState> state_;
  double lr_ = 0;
  int64_t iteration_ = 0;
};

}  // namespace mantissa::optim
