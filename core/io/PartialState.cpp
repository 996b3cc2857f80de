#include "core/io/PartialState.h"

#include <algorithm>

namespace mantissa::io {

PartialState::PartialState(Stateful& inner, std::vector<std::string> groups)
    : inner_(&inner), groups_(std::move(groups)) {
  MANTISSA_CHECK(!groups_.empty(), "PartialState: no groups given");
  for (const std::string& g : groups_) {
    MANTISSA_CHECK(!g.empty() && g.find('/') == std::string::npos, "PartialState: group '", g,
                   "' must be one non-empty path component (\"model\", \"buffers\")");
  }
}

bool PartialState::selected(const std::string& key, const std::string& prefix) const {
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = key.substr(prefix.size());
  const std::string top = rest.substr(0, rest.find('/'));
  return top.size() < rest.size() &&
         std::find(groups_.begin(), groups_.end(), top) != groups_.end();
}

void PartialState::saveState(StateDict& out, const std::string& prefix) const {
  StateDict all;
  inner_->saveState(all, prefix);
  for (auto& [k, t] : all.tensors) {
    if (selected(k, prefix)) out.tensors[k] = std::move(t);
  }
  for (auto& [k, v] : all.attrs) {
    if (selected(k, prefix)) out.attrs[k] = std::move(v);
  }
}

void PartialState::loadState(const StateDict& in, const std::string& prefix) {
  // Start from the current state, then replace the chosen groups wholesale by the file's, so a
  // key missing from (or extra in) the file is still missing (or extra) for the inner checks.
  StateDict merged;
  inner_->saveState(merged, prefix);
  std::erase_if(merged.tensors, [&](const auto& kv) { return selected(kv.first, prefix); });
  std::erase_if(merged.attrs, [&](const auto& kv) { return selected(kv.first, prefix); });
  for (const auto& [k, t] : in.tensors) {
    if (selected(k, prefix)) merged.tensors[k] = t;
  }
  for (const auto& [k, v] : in.attrs) {
    if (selected(k, prefix)) merged.attrs[k] = v;
  }
  inner_->loadState(merged, prefix);
}

}  // namespace mantissa::io
