#pragma once

#include <string>
#include <vector>

#include "core/io/StateDict.h"

namespace mantissa::io {

/// Another Stateful seen through some of its top-level groups only. Saving writes just those
/// groups; loading takes just those groups from the file and everything else from the object's
/// current state, so the object's own strict checks still apply to the chosen groups.
///
/// Typical uses, with `model` a Module (groups `model`, `buffers`, `quant`):
///   io::PartialState weights(model, {"model", "buffers"});
///   io::saveCheckpoint("weights.h5", {{"", &weights}}, meta);       // weights only
///   io::loadCheckpoint("from_pytorch.h5", {{"", &weights}});        // keep current quant state
/// and fine-tuning from a training checkpoint with fresh precision state and optimizer.
class PartialState : public Stateful {
 public:
  /// `groups` are first path components below the prefix ("model", "buffers"); non-empty.
  PartialState(Stateful& inner, std::vector<std::string> groups);

  void saveState(StateDict& out, const std::string& prefix) const override;
  void loadState(const StateDict& in, const std::string& prefix) override;

 private:
  bool selected(const std::string& key, const std::string& prefix) const;

  Stateful* inner_;
  std::vector<std::string> groups_;
};

}  // namespace mantissa::io
