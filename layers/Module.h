#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/Tensor.h"
#include "core/io/StateDict.h"
#include "formats/Policy.h"
#include "formats/QuantPoint.h"

namespace mantissa::formats {
class PrecisionSchedule;
}

namespace mantissa::nn {

using formats::FormatPolicy;

template <class T>
using Named = std::vector<std::pair<std::string, T>>;

/// The master format of one parameter (FORMATS.md A.2 role `master`): the optimizer snaps the
/// parameter to `format`, blocked along `blockAxis`, after every update.
struct MasterFormat {
  formats::FormatPtr format;
  int64_t blockAxis = -1;
};

/// Base of every layer and model (PyTorch's nn.Module vocabulary). State is named: parameters,
/// buffers, submodules and quantization points are registered under names, and the dotted
/// paths (`layer1.0.conv1.weight`) are checkpoint keys, optimizer keys and policy selectors.
/// Modules are held by shared_ptr.
class Module : public io::Stateful {
 public:
  explicit Module(std::string typeName);
  ~Module() override = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The layer's computation. Modules with several inputs add their own overloads.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& typeName() const { return typeName_; }

  // ---- registration (names must be unique within the module and contain no '.') -----------
  /// Registers a trainable F32 leaf (marked requiresGrad) and returns the stored handle.
  Tensor registerParameter(std::string name, Tensor value);
  /// Registers non-trainable state saved with the model (BN running stats, ...).
  Tensor registerBuffer(std::string name, Tensor value);
  template <class M>
  std::shared_ptr<M> registerModule(std::string name, std::shared_ptr<M> module) {
    addChild(std::move(name), module);
    return module;
  }
  /// Registers a quantization point (both directions fp32 until a policy is applied).
  formats::QuantPointPtr registerQuantPoint(std::string name, formats::Role forwardRole,
                                            formats::Role backwardRole);
  /// Replaces the tensor of a registered parameter or buffer (same shape), keeping its name.
  void setTensor(std::string_view name, const Tensor& value);

  // ---- queries (recursive, registration order, dotted names) -------------------------------
  Named<Tensor> namedParameters() const;
  Named<Tensor> namedBuffers() const;
  Named<formats::QuantPointPtr> namedQuantPoints() const;
  /// Every submodule of the tree (not this one), pre-order.
  Named<std::shared_ptr<Module>> namedModules() const;
  Named<std::shared_ptr<Module>> namedChildren() const;
  /// Master formats of every parameter that has one (dot-product weights).
  Named<MasterFormat> namedMasterFormats() const;
  int64_t numParameters() const;

  // ---- modes -------------------------------------------------------------------------------
  /// Training mode for this module and all submodules (BN batch statistics, dropout on).
  void train(bool on = true);
  void eval() { train(false); }
  bool isTraining() const { return training_; }
  /// Drops the gradients of all parameters.
  void zeroGrad();

  // ---- precision ---------------------------------------------------------------------------
  /// True for layers with a dot product (Linear, Conv2d, ConvTranspose2d): those that have
  /// weight/activation/error/weight_grad/master formats.
  virtual bool isDotProduct() const { return false; }
  /// Applies `policy` to every dot-product layer in this tree. Like every precision call below,
  /// it also names each quantization point by its dotted path relative to this module.
  void setPolicy(const FormatPolicy& policy);
  /// Applies `policy` to the dot-product layers matching `selector` (dotted names relative to
  /// this module, globs, `first`, `last`, alternatives with '|'); throws if none matches.
  void setPolicy(std::string_view selector, const FormatPolicy& policy);
  /// Applies a schedule for `epoch` of `numEpochs` to every dot-product layer.
  void applySchedule(const formats::PrecisionSchedule& schedule, int64_t epoch, int64_t numEpochs);
  /// Seeds stochastic rounding of every quantization point in the tree.
  void setQuantSeed(uint64_t seed);
  /// The dot-product layers of the tree in registration order (this module itself, if it is
  /// one, comes first with the name "" and a null pointer).
  Named<std::shared_ptr<Module>> dotProductLayers() const;
  /// One line per quantization point: "conv1.activation  fwd=hbfp8  bwd=fp32".
  std::string describePrecision() const;

  // ---- state -------------------------------------------------------------------------------
  /// Keys: `model/<param>`, `buffers/<buffer>`, `quant/<point>/...` under `prefix`.
  void saveState(io::StateDict& out, const std::string& prefix) const override;
  /// Strict: every parameter, buffer and point must be present with the same shape, and no
  /// extra `model/` or `buffers/` key may exist; errors name the key.
  void loadState(const io::StateDict& in, const std::string& prefix) override;

  /// A printable tree: "ResNet(\n  (conv1): Conv2d(1, 16, kernel=3, ...)\n ...)".
  std::string describe() const;
  /// Extra text inside the parentheses of describe() ("1, 16, kernel=3").
  virtual std::string extraRepr() const { return {}; }

 protected:
  /// Called by setPolicy on dot-product layers.
  virtual void applyPolicy(const FormatPolicy& policy) {}
  /// Master format of parameter `name` of this module (dot-product layers override).
  virtual Named<MasterFormat> ownMasterFormats() const { return {}; }

 private:
  void nameQuantPoints() const;
  void addChild(std::string name, std::shared_ptr<Module> module);
  void checkName(const std::string& name) const;
  template <class F>
  void visit(const std::string& prefix, F&& f) const;

  std::string typeName_;
  bool training_ = true;
  Named<Tensor> parameters_;
  Named<Tensor> buffers_;
  Named<std::shared_ptr<Module>> children_;
  Named<formats::QuantPointPtr> quantPoints_;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace mantissa::nn
