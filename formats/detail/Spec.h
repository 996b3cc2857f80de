#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mantissa::formats::detail {

/// A format spelling split into its head and key=value options: "hbfp8:block=32,round=nearest"
/// gives head "hbfp8" and keys {block: 32, round: nearest}. Getters consume keys; finish()
/// rejects any key left over. Every error quotes the whole spec and lists what is allowed.
class SpecKeys {
 public:
  explicit SpecKeys(std::string_view spec);

  const std::string& spec() const { return spec_; }
  const std::string& head() const { return head_; }

  /// Integer option in [lo, hi]; `def` when absent.
  int64_t getInt(std::string_view key, int64_t def, int64_t lo, int64_t hi);
  /// Real option in [lo, hi]; `def` when absent.
  double getDouble(std::string_view key, double def, double lo, double hi);
  /// One of `allowed`; `def` when absent.
  std::string getChoice(std::string_view key, std::string_view def,
                        const std::vector<std::string>& allowed);
  /// Consumes a bare token without '=' ("ffp8:auto"); true when it was present. A bare token
  /// nobody takes is rejected by finish().
  bool takeFlag(std::string_view token);
  /// True when the key is present (does not consume it).
  bool has(std::string_view key) const;
  /// Throws if keys remain that no getter consumed, listing `allowedKeys`.
  void finish(const std::vector<std::string>& allowedKeys) const;

 private:
  std::string spec_;
  std::string head_;
  std::vector<std::pair<std::string, std::string>> keys_;
};

}  // namespace mantissa::formats::detail
