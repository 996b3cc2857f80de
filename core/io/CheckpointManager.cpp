#include "core/io/CheckpointManager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "core/io/detail/AtomicFile.h"

namespace mantissa::io {

namespace fs = std::filesystem;

namespace {

struct HistoryEntry {
  int64_t epoch, step;
  fs::path path;
};

/// Parses "<stem>-epoch<digits>-step<digits><ext>"; false for any other name.
bool parseHistoryName(const std::string& name, const std::string& stem, const std::string& ext,
                      int64_t& epoch, int64_t& step) {
  const std::string head = stem + "-epoch";
  if (name.size() <= head.size() + ext.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - ext.size(), ext.size(), ext) != 0) {
    return false;
  }
  const std::string mid = name.substr(head.size(), name.size() - head.size() - ext.size());
  const size_t sep = mid.find("-step");
  if (sep == std::string::npos) return false;
  const std::string e = mid.substr(0, sep), s = mid.substr(sep + 5);
  auto digits = [](const std::string& d) {
    return !d.empty() && d.size() <= 18 && d.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(e) || !digits(s)) return false;
  epoch = std::stoll(e);
  step = std::stoll(s);
  return true;
}

}  // namespace

CheckpointManager::CheckpointManager(CheckpointManagerOptions options)
    : options_(std::move(options)) {
  MANTISSA_CHECK(!options_.path.empty(), "CheckpointManager: empty checkpoint path");
  MANTISSA_CHECK(options_.path.has_filename(), "CheckpointManager: checkpoint path '",
                 options_.path.string(), "' names a directory, not a file");
  MANTISSA_CHECK(options_.keep >= 1, "CheckpointManager: --keep must be at least 1, got ",
                 options_.keep);
  if (options_.keepBest && options_.resume && fs::exists(bestPath())) {
    // An unreadable best file (damaged, older tool) has no title to defend: the next scored
    // save replaces it.
    try {
      CheckpointMeta m = readMeta(bestPath());
      if (!m.metricName.empty() && !std::isnan(m.metric)) best_ = m.metric;
    } catch (const CheckpointError&) {
    }
  }
}

fs::path CheckpointManager::bestPath() const {
  const fs::path& p = options_.path;
  return p.parent_path() / (p.stem().string() + "-best" + p.extension().string());
}

fs::path CheckpointManager::historyPath(int64_t epoch, int64_t step) const {
  MANTISSA_CHECK(epoch >= 0 && step >= 0, "CheckpointManager: negative epoch ", epoch, " or step ",
                 step);
  const fs::path& p = options_.path;
  char tag[64];
  std::snprintf(tag, sizeof tag, "-epoch%04lld-step%08lld", static_cast<long long>(epoch),
                static_cast<long long>(step));
  return p.parent_path() / (p.stem().string() + tag + p.extension().string());
}

std::vector<fs::path> CheckpointManager::history() const {
  std::vector<HistoryEntry> entries;
  const fs::path dir =
      options_.path.parent_path().empty() ? fs::path(".") : options_.path.parent_path();
  const std::string stem = options_.path.stem().string(), ext = options_.path.extension().string();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    int64_t e = 0, s = 0;
    if (parseHistoryName(it->path().filename().string(), stem, ext, e, s)) {
      entries.push_back({e, s, options_.path.parent_path() / it->path().filename()});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
    return std::tie(a.epoch, a.step) < std::tie(b.epoch, b.step);
  });
  std::vector<fs::path> out;
  for (auto& e : entries) out.push_back(std::move(e.path));
  return out;
}

bool CheckpointManager::improves(const CheckpointMeta& meta) const {
  if (meta.metricName.empty() || std::isnan(meta.metric)) return false;
  if (!best_) return true;
  return options_.goal == MetricGoal::Maximize ? meta.metric > *best_ : meta.metric < *best_;
}

void CheckpointManager::prune(int64_t epoch, int64_t step) const {
  // Keep the newest keep-1 history files older than the one just written (which is the K-th).
  std::vector<fs::path> older;
  const std::string stem = options_.path.stem().string(), ext = options_.path.extension().string();
  for (const fs::path& p : history()) {
    int64_t e = 0, s = 0;
    parseHistoryName(p.filename().string(), stem, ext, e, s);
    if (std::tie(e, s) < std::tie(epoch, step)) older.push_back(p);
  }
  const size_t keepOlder = options_.keep > 1 ? static_cast<size_t>(options_.keep - 1) : 0;
  for (size_t i = 0; i + keepOlder < older.size(); ++i) {
    std::error_code ec;
    fs::remove(older[i], ec);  // a file that is already gone is fine
  }
}

fs::path CheckpointManager::save(const SaveParts& parts, const CheckpointMeta& meta) {
  fs::path written = options_.path;
  if (options_.keep > 1) {
    written = historyPath(meta.epoch, meta.step);
    saveCheckpoint(written, parts, meta);
    detail::linkAtomically(written, options_.path);
  } else {
    saveCheckpoint(written, parts, meta);
  }
  if (options_.keepBest && improves(meta)) {
    detail::linkAtomically(written, bestPath());
    best_ = meta.metric;
  }
  prune(meta.epoch, meta.step);
  return written;
}

}  // namespace mantissa::io
