#include "core/io/Checkpoint.h"

#include <zlib.h>

#include <charconv>
#include <cmath>
#include <ctime>
#include <set>
#include <variant>

#include "core/Version.h"
#include "core/io/detail/AtomicFile.h"
#include "core/io/detail/CheckpointHooks.h"
#include "core/io/detail/H5Tree.h"

namespace mantissa::io {

namespace fs = std::filesystem;

namespace {

const std::string kMetaGroup = "/meta";
const std::string kMetaPrefix = "meta/";

// Attribute names of /meta (documented in docs/checkpoints.md).
const char* const kFormatVersion = "format_version";
const char* const kLibraryVersion = "library_version";
const char* const kCreated = "created";
const char* const kApp = "app";
const char* const kModel = "model";
const char* const kModelConfig = "model_config";
const char* const kPrecision = "precision";
const char* const kEpoch = "epoch";
const char* const kStep = "step";
const char* const kSeed = "seed";
const char* const kCommandLine = "command_line";
const char* const kMetricName = "metric_name";
const char* const kMetric = "metric";
const char* const kContentCrc = "content_crc32";

const std::set<std::string>& reservedMetaNames() {
  static const std::set<std::string> names = {
      kFormatVersion, kLibraryVersion, kCreated, kApp,       kModel,
      kModelConfig,   kPrecision,      kEpoch,   kStep,      kSeed,
      kCommandLine,   kMetricName,     kMetric,  kContentCrc};
  return names;
}

using MetaValue = std::variant<std::string, int64_t, uint64_t, double>;

std::string normalizePrefix(std::string prefix) {
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  return prefix;
}

std::string partName(const std::string& prefix) {
  return prefix.empty() ? std::string("the top-level part") : "part '" + prefix + "'";
}

std::string utcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// The attributes of /meta for `meta`, typed as they are stored.
std::map<std::string, MetaValue> metaAttributes(const CheckpointMeta& meta, const fs::path& path) {
  std::map<std::string, MetaValue> a;
  a[kFormatVersion] = kCheckpointFormatVersion;
  a[kLibraryVersion] = std::string(versionString());
  a[kCreated] = utcNow();
  a[kApp] = meta.app;
  a[kModel] = meta.model;
  a[kModelConfig] = meta.modelConfig;
  a[kPrecision] = meta.precision;
  a[kEpoch] = meta.epoch;
  a[kStep] = meta.step;
  a[kSeed] = meta.seed;
  a[kCommandLine] = meta.commandLine;
  if (!meta.metricName.empty()) {
    a[kMetricName] = meta.metricName;
    a[kMetric] = meta.metric;
  }
  for (const auto& [name, value] : meta.extra) {
    const std::string key = kMetaPrefix + name;
    if (name.empty() || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos || name == "." || name == "..") {
      throw CheckpointError(path, key, "invalid extra metadata name");
    }
    if (reservedMetaNames().count(name) != 0) {
      throw CheckpointError(path, key,
                            "extra metadata name collides with the standard field '" + name + "'");
    }
    a[name] = value;
  }
  return a;
}

std::string metaText(const MetaValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) {
          return x;
        } else {
          return detail::numberText(x);
        }
      },
      v);
}

/// CRC-32 (zlib) over a canonical serialisation of everything in the file except the checksum
/// itself: for each tensor in key order "T" key NUL dtype NUL dims(","-joined) NUL raw
/// little-endian bytes; then for each attribute in key order (the /meta ones as "meta/<name>"
/// with their decimal text) "A" key NUL value NUL. HDF5 checksums only its own metadata; this
/// also covers raw tensor bytes and strings, so a flipped bit anywhere is noticed.
uint32_t contentCrc(const StateDict& content, const std::map<std::string, std::string>& meta) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto add = [&](const void* p, size_t n) { crc = crc32_z(crc, static_cast<const Bytef*>(p), n); };
  auto addText = [&](const std::string& s) { add(s.data(), s.size() + 1); };  // with its NUL
  for (const auto& [key, tensor] : content.tensors) {
    add("T", 1);
    addText(key);
    addText(dtypeName(tensor.dtype()));
    std::string dims;
    for (int64_t d : tensor.shape()) {
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    addText(dims);
    Tensor c = tensor.detach().contiguous();
    if (c.nbytes() > 0) {
      const char* base = static_cast<const char*>(c.storage()->data());
      add(base + c.offset() * static_cast<int64_t>(elementSize(c.dtype())), c.nbytes());
    }
  }
  std::map<std::string, std::string> attrs = content.attrs;
  for (const auto& [name, value] : meta) {
    if (name != kContentCrc) attrs[kMetaPrefix + name] = value;
  }
  for (const auto& [key, value] : attrs) {
    add("A", 1);
    addText(key);
    addText(value);
  }
  return static_cast<uint32_t>(crc);
}

/// Every part's state under its prefix, checked for keys outside the prefix, in `meta/` or
/// written by two parts.
StateDict collectParts(const SaveParts& parts, const fs::path& path) {
  StateDict all;
  for (const auto& [rawPrefix, part] : parts) {
    const std::string prefix = normalizePrefix(rawPrefix);
    if (part == nullptr) throw CheckpointError(path, "", partName(prefix) + " is null");
    if (prefix.rfind(kMetaPrefix, 0) == 0) {
      throw CheckpointError(path, "", "the prefix 'meta/' is reserved for the checkpoint metadata");
    }
    StateDict one;
    try {
      part->saveState(one, prefix);
    } catch (const CheckpointError&) {
      throw;
    } catch (const std::exception& e) {
      throw CheckpointError(path, "", partName(prefix) + " failed to save its state: " + e.what());
    }
    auto merge = [&](auto& from, auto& into, const char* what) {
      for (auto& [key, value] : from) {
        if (key.rfind(prefix, 0) != 0 || key.rfind(kMetaPrefix, 0) == 0) {
          throw CheckpointError(path, key,
                                partName(prefix) + " wrote a key outside its prefix" +
                                    (key.rfind(kMetaPrefix, 0) == 0 ? " (meta/ is reserved)" : ""));
        }
        if (!into.emplace(key, std::move(value)).second) {
          throw CheckpointError(path, key, std::string("two parts write the same ") + what);
        }
      }
    };
    merge(one.tensors, all.tensors, "tensor");
    merge(one.attrs, all.attrs, "attribute");
  }
  return all;
}

template <class T>
T parseNumber(const std::map<std::string, std::string>& text, const char* name, T fallback,
              const fs::path& path) {
  auto it = text.find(name);
  if (it == text.end()) return fallback;
  const std::string& s = it->second;
  T value{};
  auto res = std::from_chars(s.data(), s.data() + s.size(), value);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) {
    // from_chars does not read "nan"/"inf" spellings of every libc; accept NaN explicitly.
    if constexpr (std::is_floating_point_v<T>) {
      if (s == "nan" || s == "-nan") return std::numeric_limits<T>::quiet_NaN();
    }
    throw CheckpointError(path, kMetaPrefix + name, "is not a number: '" + s + "'");
  }
  return value;
}

/// Parses /meta's attribute text; refuses a missing or newer format version first, since a
/// newer layout may mean anything.
CheckpointMeta parseMeta(const std::map<std::string, std::string>& text, const fs::path& path) {
  CheckpointMeta meta;
  if (text.count(kFormatVersion) == 0) {
    throw CheckpointError(path, kMetaPrefix + kFormatVersion,
                          "missing: not a Mantissa checkpoint (or written by a broken tool)");
  }
  auto str = [&](const char* name) {
    auto it = text.find(name);
    return it == text.end() ? std::string() : it->second;
  };
  meta.formatVersion = parseNumber<int64_t>(text, kFormatVersion, 0, path);
  meta.libraryVersion = str(kLibraryVersion);
  if (meta.formatVersion < 1) {
    throw CheckpointError(
        path, kMetaPrefix + kFormatVersion,
        "invalid checkpoint format version " + std::to_string(meta.formatVersion));
  }
  if (meta.formatVersion > kCheckpointFormatVersion) {
    throw CheckpointError(
        path, "",
        "checkpoint format version " + std::to_string(meta.formatVersion) +
            " (written by Mantissa " + (meta.libraryVersion.empty() ? "?" : meta.libraryVersion) +
            ") is newer than this build supports (Mantissa " + versionString() + " reads up to " +
            std::to_string(kCheckpointFormatVersion) + "): upgrade Mantissa to load it");
  }
  meta.created = str(kCreated);
  meta.app = str(kApp);
  meta.model = str(kModel);
  meta.modelConfig = str(kModelConfig);
  meta.precision = str(kPrecision);
  meta.epoch = parseNumber<int64_t>(text, kEpoch, 0, path);
  meta.step = parseNumber<int64_t>(text, kStep, 0, path);
  meta.seed = parseNumber<uint64_t>(text, kSeed, 0, path);
  meta.commandLine = str(kCommandLine);
  meta.metricName = str(kMetricName);
  meta.metric = parseNumber<double>(text, kMetric, std::numeric_limits<double>::quiet_NaN(), path);
  for (const auto& [name, value] : text) {
    if (reservedMetaNames().count(name) == 0) meta.extra[name] = value;
  }
  return meta;
}

std::map<std::string, std::string> readMetaText(hid_t file, const fs::path& path) {
  detail::H5Handle group = detail::openGroupIfExists(file, kMetaGroup, path);
  if (!group.valid()) {
    throw CheckpointError(path, "",
                          "not a Mantissa checkpoint: no /meta group (a plain state file? read it "
                          "with readHdf5)");
  }
  return detail::readAttrs(group.get(), path, kMetaPrefix);
}

/// Moves /meta's attributes out of `all` (keys "meta/<name>"); /meta holds nothing else.
std::map<std::string, std::string> extractMeta(StateDict& all, const fs::path& path) {
  for (const auto& [key, t] : all.tensors) {
    if (key.rfind(kMetaPrefix, 0) == 0) {
      throw CheckpointError(path, key, "unexpected dataset in /meta (it holds attributes only)");
    }
  }
  std::map<std::string, std::string> meta;
  for (auto it = all.attrs.begin(); it != all.attrs.end();) {
    if (it->first.rfind(kMetaPrefix, 0) != 0) {
      ++it;
      continue;
    }
    const std::string name = it->first.substr(kMetaPrefix.size());
    if (name.find('/') != std::string::npos) {
      throw CheckpointError(path, it->first,
                            "unexpected group in /meta (it holds attributes only)");
    }
    meta[name] = it->second;
    it = all.attrs.erase(it);
  }
  return meta;
}

void verifyCrc(const StateDict& all, const std::map<std::string, std::string>& meta,
               const fs::path& path) {
  if (meta.count(kContentCrc) == 0) return;  // written by another tool: nothing to verify
  const uint64_t stored = parseNumber<uint64_t>(meta, kContentCrc, 0, path);
  const uint32_t computed = contentCrc(all, meta);
  if (stored != computed) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "stored %08llx, computed %08x",
                  static_cast<unsigned long long>(stored), computed);
    throw CheckpointError(path, "",
                          std::string("damaged: content checksum mismatch (") + buf +
                              "); the file changed after it was written (if you edited it on "
                              "purpose, delete the /meta attribute content_crc32)");
  }
}

/// Proper '/'-prefixes of `key` ("a/b/c" -> "a", "a/b").
template <class F>
void forEachAncestor(const std::string& key, F&& f) {
  for (size_t pos = key.find('/'); pos != std::string::npos; pos = key.find('/', pos + 1)) {
    f(key.substr(0, pos));
  }
}

/// File keys inside the parts' top-level groups that no part expects: neither a key the parts
/// save now, nor a sibling of one (same parent group: another optimizer slot, a parameter the
/// Module itself vets), nor an attribute on one of their tensors.
std::vector<std::string> unclaimedKeys(const StateDict& file,
                                       const std::vector<StateDict>& expected) {
  std::set<std::string> tops, groups, exact;
  for (const StateDict& e : expected) {
    auto addKey = [&](const std::string& k) {
      exact.insert(k);
      tops.insert(k.substr(0, k.find('/')));
      forEachAncestor(k, [&](const std::string& g) { groups.insert(g); });
    };
    for (const auto& [k, t] : e.tensors) addKey(k);
    for (const auto& [k, v] : e.attrs) addKey(k);
  }
  std::vector<std::string> out;
  auto vet = [&](const std::string& k) {
    if (tops.count(k.substr(0, k.find('/'))) == 0 || exact.count(k) != 0) return;
    size_t slash = k.rfind('/');
    if (slash != std::string::npos) {
      const std::string parent = k.substr(0, slash);
      if (groups.count(parent) != 0 || exact.count(parent) != 0) return;
    }
    out.push_back(k);
  };
  for (const auto& [k, t] : file.tensors) vet(k);
  for (const auto& [k, v] : file.attrs) vet(k);
  return out;
}

}  // namespace

namespace detail {

void saveCheckpoint(const fs::path& path, const SaveParts& parts, const CheckpointMeta& meta,
                    const AtomicWriteHooks& hooks) {
  const StateDict content = collectParts(parts, path);
  const std::map<std::string, MetaValue> attrs = metaAttributes(meta, path);
  std::map<std::string, std::string> text;
  for (const auto& [name, value] : attrs) text[name] = metaText(value);
  const uint32_t crc = contentCrc(content, text);
  try {
    FileImage image;
    {
      auto lock = lockHdf5();
      ImageFile file = createImageFile(path, estimateFileSize(content));
      writeTree(file.get(), content, path);
      {
        H5Handle group = ensureGroup(file.get(), kMetaGroup, path);
        for (const auto& [name, value] : attrs) {
          std::visit(
              [&](const auto& v) { writeAttr(group.get(), name, v, path, kMetaPrefix + name); },
              value);
        }
        writeAttr(group.get(), kContentCrc, static_cast<int64_t>(crc), path,
                  kMetaPrefix + kContentCrc);
      }
      image = takeImage(file, path);
    }
    replaceAtomically(
        path,
        [&](const fs::path& tmp) { writeFileBytes(tmp, image.bytes.get(), image.size, path); },
        hooks);
  } catch (const CheckpointError& e) {
    throw CheckpointError(e.path(), e.key(),
                          e.reason() +
                              " [nothing was replaced: the previous checkpoint, if any, "
                              "is intact]");
  }
}

}  // namespace detail

void saveCheckpoint(const fs::path& path, const SaveParts& parts, const CheckpointMeta& meta) {
  detail::saveCheckpoint(path, parts, meta, {});
}

CheckpointMeta readMeta(const fs::path& path) {
  auto lock = detail::lockHdf5();
  detail::H5Handle file = detail::openFile(path);
  return parseMeta(readMetaText(file.get(), path), path);
}

CheckpointMeta loadCheckpoint(const fs::path& path, const LoadParts& parts,
                              const CheckpointLoadOptions& options) {
  StateDict all;
  {
    auto lock = detail::lockHdf5();
    detail::H5Handle file = detail::openFile(path);
    // The version first: a newer layout may not even read as this build expects.
    parseMeta(readMetaText(file.get(), path), path);
    detail::readTree(file.get(), all, path);
  }
  const std::map<std::string, std::string> metaText = extractMeta(all, path);
  verifyCrc(all, metaText, path);
  CheckpointMeta meta = parseMeta(metaText, path);
  if (!options.expectModel.empty() && meta.model != options.expectModel) {
    throw CheckpointError(path, kMetaPrefix + kModel,
                          "checkpoint of model '" + meta.model + "', but the program builds '" +
                              options.expectModel + "'");
  }

  // What the parts hold now: the expected keys and shapes, and the state to restore if any
  // part fails, so a failed load changes nothing.
  std::vector<std::string> prefixes;
  std::vector<StateDict> before(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    prefixes.push_back(normalizePrefix(parts[i].first));
    if (parts[i].second == nullptr)
      throw CheckpointError(path, "", partName(prefixes[i]) + " is null");
    try {
      parts[i].second->saveState(before[i], prefixes[i]);
    } catch (const std::exception& e) {
      throw CheckpointError(path, "",
                            partName(prefixes[i]) + " cannot report its state: " + e.what());
    }
  }
  for (const StateDict& expected : before) {
    for (const auto& [key, t] : expected.tensors) {
      auto it = all.tensors.find(key);
      if (it != all.tensors.end() && it->second.shape() != t.shape()) {
        throw CheckpointError(path, key,
                              "shape " + toString(it->second.shape()) +
                                  " in the file, the program expects " + toString(t.shape()));
      }
    }
  }

  auto restore = [&](size_t count) {
    for (size_t j = 0; j < count; ++j) {
      try {
        parts[j].second->loadState(before[j], prefixes[j]);
      } catch (...) {
        // Best effort: the original error is the one to report.
      }
    }
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    try {
      parts[i].second->loadState(all, prefixes[i]);
    } catch (const std::exception& e) {
      restore(i + 1);
      throw CheckpointError(path, "", e.what());
    }
  }
  if (options.strictKeys) {
    std::vector<std::string> extra = unclaimedKeys(all, before);
    if (!extra.empty()) {
      restore(parts.size());
      std::string more;
      for (size_t j = 1; j < extra.size() && j < 6; ++j)
        more += (more.empty() ? "" : ", ") + extra[j];
      if (extra.size() > 6) more += ", ...";
      throw CheckpointError(
          path, extra.front(),
          "unexpected: the program has no such state (a checkpoint of another model or "
          "configuration?)" +
              (extra.size() > 1 ? " [" + std::to_string(extra.size() - 1) + " more: " + more + "]"
                                : std::string()));
    }
  }
  return meta;
}

}  // namespace mantissa::io
