#include "core/io/StateDict.h"

namespace mantissa::io {

const Tensor& StateDict::tensor(const std::string& key) const {
  auto it = tensors.find(key);
  MANTISSA_CHECK(it != tensors.end(), "state: missing tensor '", key, "'");
  return it->second;
}

const std::string& StateDict::attr(const std::string& key) const {
  auto it = attrs.find(key);
  MANTISSA_CHECK(it != attrs.end(), "state: missing attribute '", key, "'");
  return it->second;
}

}  // namespace mantissa::io
