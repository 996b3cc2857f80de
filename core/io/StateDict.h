#pragma once

#include <map>
#include <string>

#include "core/Tensor.h"

namespace mantissa::io {

/// A flat tree of named state: tensors and string attributes keyed by '/'-separated paths
/// ("layer1.0.conv1.weight", "quant/fc.activation/forward/history"). Every stateful piece
/// (modules, optimizers, quantization points, loaders, RNGs) saves into and loads from one;
/// core/io maps it onto HDF5 groups. Scalars are stored as one-element tensors.
struct StateDict {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> attrs;

  /// The tensor at `key`; throws naming the key when it is missing.
  const Tensor& tensor(const std::string& key) const;
  /// The attribute at `key`; throws naming the key when it is missing.
  const std::string& attr(const std::string& key) const;
  bool has(const std::string& key) const { return tensors.count(key) || attrs.count(key); }
};

/// Something whose complete state round-trips through a StateDict under a key prefix.
class Stateful {
 public:
  virtual ~Stateful() = default;
  virtual void saveState(StateDict& out, const std::string& prefix) const = 0;
  /// Strict: every expected key must be present with the expected shape.
  virtual void loadState(const StateDict& in, const std::string& prefix) = 0;
};

}  // namespace mantissa::io
