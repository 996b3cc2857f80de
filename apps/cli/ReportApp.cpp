// mantissa-report: training curves of several runs on one chart, or a table of their final
// figures, from the apps' JSONL logs.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"
#include "apps/cli/JsonValue.h"
#include "apps/cli/Plot.h"

namespace mantissa::cli {

namespace {

/// The lines of one log, parsed; a malformed line is an error naming the file and the line.
std::vector<JsonValue> readLog(const std::string& path) {
  std::ifstream f(path);
  MANTISSA_CHECK(f.is_open(), path, ": cannot open the log");
  std::vector<JsonValue> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(f, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      JsonValue v = JsonValue::parse(line);
      MANTISSA_CHECK(v.isObject(), "not a JSON object");
      out.push_back(std::move(v));
    } catch (const Error& e) {
      std::string msg = e.what();
      if (size_t at = msg.rfind(" ["); at != std::string::npos && msg.back() == ']') msg.resize(at);
      MANTISSA_CHECK(false, path, ":", number, ": not a JSON-lines record (", msg, ")");
    }
  }
  MANTISSA_CHECK(!f.bad(), path, ": read error");
  return out;
}

std::string eventOf(const JsonValue& v) {
  const JsonValue* e = v.find("event");
  return e && e->isString() ? e->string() : std::string();
}

/// "r20-flexpoint (flexpoint)": the file's stem and the run's precision from its summary (or
/// from its last line that names one).
std::string legendLabel(const std::string& path, const std::vector<JsonValue>& lines) {
  std::string label = std::filesystem::path(path).stem().string();
  std::string precision;
  for (const JsonValue& v : lines) {
    if (const JsonValue* p = v.find("precision"); p && p->isString()) precision = p->string();
  }
  if (!precision.empty() && label.find(precision) == std::string::npos) {
    label += " (" + precision + ")";
  }
  return label;
}

/// y of `metric` per epoch (x = epoch number, 1-based). A resumed run that repeats an epoch
/// keeps the later value; null (non-finite) values become gaps.
PlotSeries epochSeries(const std::string& path, const std::vector<JsonValue>& lines,
                       const std::string& metric) {
  std::map<double, double> byEpoch;
  std::set<std::string> seen;
  bool anyEpoch = false;
  for (const JsonValue& v : lines) {
    if (eventOf(v) != "epoch") continue;
    anyEpoch = true;
    for (const auto& [k, m] : v.members()) {
      if (m.isNumber()) seen.insert(k);
    }
    const JsonValue* e = v.find("epoch");
    const JsonValue* y = v.find(metric);
    if (!e || !e->isNumber() || !y) continue;
    byEpoch[e->number() + 1] = y->isNumber() ? y->number() : std::nan("");
  }
  MANTISSA_CHECK(anyEpoch, path,
                 ": no line with \"event\":\"epoch\" (is it a mantissa training log?)");
  if (byEpoch.empty()) {
    std::string fields;
    for (const std::string& k : seen) fields += (fields.empty() ? "" : ", ") + k;
    MANTISSA_CHECK(false, path, ": no epoch line has '", metric,
                   "' (--metric; its epoch lines have: ", fields, ")");
  }
  PlotSeries s;
  for (auto& [x, y] : byEpoch) {
    s.x.push_back(x);
    s.y.push_back(y);
  }
  return s;
}

/// A per-tensor statistic (default the Autoflex exponent) of `tensor` from the "step" lines'
/// `formats` objects, over optimizer steps.
PlotSeries stepSeries(const std::string& path, const std::vector<JsonValue>& lines,
                      const std::string& tensor, const std::string& stat) {
  std::map<double, double> byStep;
  std::set<std::string> tensors, keys;
  bool anyStep = false;
  for (const JsonValue& v : lines) {
    if (eventOf(v) != "step") continue;
    anyStep = true;
    const JsonValue* formats = v.find("formats");
    const JsonValue* step = v.find("step");
    if (!formats || !formats->isObject() || !step || !step->isNumber()) continue;
    for (const auto& [k, m] : formats->members()) tensors.insert(k);
    const JsonValue* t = formats->find(tensor);
    if (!t || !t->isObject()) continue;
    for (const auto& [k, m] : t->members()) keys.insert(k);
    // "exponent" means the forward direction's if the point has one, else the backward's
    // (an `error` point only quantizes on the way back).
    const JsonValue* y =
        stat.find('.') != std::string::npos ? t->find(stat) : t->find("fwd." + stat);
    if (!y && stat.find('.') == std::string::npos) y = t->find("bwd." + stat);
    if (!y) continue;
    byStep[step->number()] = y->isNumber() ? y->number() : std::nan("");
  }
  MANTISSA_CHECK(anyStep, path, ": no \"step\" lines (run the app with --metrics-every N)");
  if (byStep.empty()) {
    std::string list;
    const std::set<std::string>& names = keys.empty() ? tensors : keys;
    size_t shown = 0;
    for (const std::string& k : names) {
      if (shown++ == 12) {
        list += ", ...";
        break;
      }
      list += (list.empty() ? "" : ", ") + k;
    }
    if (keys.empty()) {
      MANTISSA_CHECK(false, path, ": --tensor '", tensor, "' is in no step line (tensors: ", list,
                     ")");
    }
    MANTISSA_CHECK(false, path, ": --tensor '", tensor, "' has no '", stat,
                   "' (--stat; it has: ", list, ")");
  }
  PlotSeries s;
  for (auto& [x, y] : byStep) {
    s.x.push_back(x);
    s.y.push_back(y);
  }
  return s;
}

/// The line that sums a run up: its summary, else a post-training-quantization or evaluation
/// result, else the last epoch line.
const JsonValue& finalLine(const std::string& path, const std::vector<JsonValue>& lines) {
  for (const char* event : {"summary", "ptq", "eval", "epoch"}) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      if (eventOf(*it) == event) return *it;
    }
  }
  MANTISSA_CHECK(false, path,
                 ": no summary, ptq, eval or epoch line (is it a mantissa log?)");
  return lines.front();  // not reached
}

/// Columns shown by default, in this order, when any run has them.
const std::vector<std::string> kDefaultColumns = {
    "epoch",          "test_accuracy",      "fp32_accuracy", "quantized_accuracy",
    "accuracy_delta", "test_loss",          "train_loss",    "wasserstein",
    "fid",            "images_per_sec",     "wall_seconds",  "peak_rss_mib"};

/// One table cell: accuracies (0..1) as percentages with two decimals, the 0-based epoch as
/// the number of epochs run, other numbers with four significant digits; null is "n/a"
/// (non-finite), an absent field is empty.
std::string cell(const std::string& column, const JsonValue* v) {
  if (!v) return "";
  if (v->isNull()) return "n/a";
  if (v->isString()) return v->string();
  if (!v->isNumber()) return "?";
  char buf[64];
  double x = v->number();
  if (column == "epoch") {
    std::snprintf(buf, sizeof buf, "%.0f", x + 1);
  } else if (column.size() >= 8 && column.compare(column.size() - 8, 8, "accuracy") == 0) {
    std::snprintf(buf, sizeof buf, "%.2f%%", 100 * x);
  } else if (column == "accuracy_delta") {
    std::snprintf(buf, sizeof buf, "%+.2f", 100 * x);  // percentage points
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", x);
  }
  return buf;
}

/// A Markdown (or CSV) table: one row per log, from its final line.
std::string renderTable(const std::vector<std::string>& paths,
                        const std::vector<std::vector<JsonValue>>& logs,
                        std::vector<std::string> columns, bool csv) {
  std::vector<const JsonValue*> rows;
  for (size_t i = 0; i < logs.size(); ++i) rows.push_back(&finalLine(paths[i], logs[i]));
  auto anyHas = [&](const std::string& c) {
    return std::any_of(rows.begin(), rows.end(),
                       [&](const JsonValue* r) { return r->find(c) != nullptr; });
  };
  if (columns.empty()) {
    for (const std::string& c : kDefaultColumns) {
      if (anyHas(c)) columns.push_back(c);
    }
  } else {
    for (const std::string& c : columns) {
      MANTISSA_CHECK(anyHas(c), "--columns: no log's final line has '", c, "'");
    }
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (csv) {
        out << (i ? "," : "") << cells[i];
      } else {
        out << "| " << cells[i] << ' ';
      }
    }
    out << (csv ? "\n" : "|\n");
  };
  std::vector<std::string> header = {"run", "precision"};
  header.insert(header.end(), columns.begin(), columns.end());
  line(header);
  if (!csv) line(std::vector<std::string>(header.size(), "---"));
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string> cells = {std::filesystem::path(paths[i]).stem().string()};
    const JsonValue* p = rows[i]->find("precision");
    if (!p) p = rows[i]->find("format");
    cells.push_back(p && p->isString() ? p->string() : "");
    for (const std::string& c : columns) cells.push_back(cell(c, rows[i]->find(c)));
    line(cells);
  }
  return out.str();
}

std::string metricTitle(const std::string& metric) {
  static const std::map<std::string, std::string> names = {
      {"test_accuracy", "test accuracy"},      {"train_loss", "training loss"},
      {"train_accuracy", "training accuracy"}, {"test_loss", "test loss"},
      {"wasserstein", "Wasserstein estimate"}, {"fid", "Frechet distance (FID-like)"},
      {"generator_loss", "generator loss"},    {"critic_loss", "critic loss"},
      {"images_per_sec", "images/s"}};
  auto it = names.find(metric);
  return it == names.end() ? metric : it->second;
}

}  // namespace

int reportApp(int argc, char** argv) {
  cxxopts::Options options("mantissa-report",
                           "Plot training curves of several runs from their JSONL logs");
  options.positional_help("RUN.jsonl...");
  options.add_options()("output", "chart file: .svg or .png",
                        cxxopts::value<std::string>()->default_value(""))(
      "metric",
      "epoch metric: test_accuracy, train_loss, test_loss, wasserstein, fid, "
      "generator_loss, critic_loss, ... (any number on the epoch lines)",
      cxxopts::value<std::string>()->default_value("test_accuracy"))(
      "tensor",
      "plot a quantization point's statistic over steps instead, e.g. "
      "conv1.activation (from --metrics-every step lines)",
      cxxopts::value<std::string>()->default_value(""))(
      "stat",
      "with --tensor: exponent (Autoflex), overflows, saturated, alpha, beta, ... or a "
      "full key like bwd.exponent",
      cxxopts::value<std::string>()->default_value("exponent"))(
      "title", "chart title (default: what is plotted)",
      cxxopts::value<std::string>()->default_value(""))(
      "width", "pixels", cxxopts::value<int>()->default_value("900"))(
      "height", "pixels", cxxopts::value<int>()->default_value("520"))(
      "table",
      "instead of a chart: a table of each run's final figures (Markdown; CSV if --output "
      "ends in .csv; stdout without --output)")(
      "columns", "with --table: comma-separated fields (default: the usual ones present)",
      cxxopts::value<std::vector<std::string>>()->default_value(""))(
      "runs", "JSONL logs", cxxopts::value<std::vector<std::string>>())("h,help", "show this help");
  options.parse_positional({"runs"});
  auto r = options.parse(argc, argv);
  if (r.count("help")) {
    std::cout << options.help() << '\n';
    return 0;
  }
  if (!r.count("runs")) throw UsageError("no RUN.jsonl files given");
  std::string output = r["output"].as<std::string>();
  std::string ext = std::filesystem::path(output).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (r.count("table")) {
    if (!output.empty() && ext != ".md" && ext != ".csv") {
      throw UsageError("--output '" + output + "': a --table is .md or .csv");
    }
    std::vector<std::string> paths = r["runs"].as<std::vector<std::string>>(), columns;
    for (const std::string& c : r["columns"].as<std::vector<std::string>>()) {
      if (!c.empty()) columns.push_back(c);
    }
    std::vector<std::vector<JsonValue>> logs;
    for (const std::string& path : paths) logs.push_back(readLog(path));
    std::string table = renderTable(paths, logs, columns, ext == ".csv");
    if (output.empty()) {
      std::cout << table;
      return 0;
    }
    std::ofstream f(output);
    MANTISSA_CHECK(f.is_open(), output, ": cannot write the table (--output)");
    f << table;
    f.close();
    MANTISSA_CHECK(f.good(), output, ": write error (--output)");
    std::printf("%s: %zu run%s\n", output.c_str(), paths.size(), paths.size() == 1 ? "" : "s");
    return 0;
  }
  if (output.empty()) throw UsageError("--output FILE.svg|FILE.png is required");
  if (ext != ".svg" && ext != ".png") {
    throw UsageError("--output '" + output + "': unknown extension (allowed: .svg, .png)");
  }
  std::string metric = r["metric"].as<std::string>();
  std::string tensor = r["tensor"].as<std::string>();
  std::string stat = r["stat"].as<std::string>();
  PlotSpec spec;
  spec.width = r["width"].as<int>();
  spec.height = r["height"].as<int>();
  if (spec.width < 200 || spec.height < 150 || spec.width > 8000 || spec.height > 8000) {
    throw UsageError("--width/--height must lie in [200, 8000] x [150, 8000]");
  }
  for (const std::string& path : r["runs"].as<std::vector<std::string>>()) {
    std::vector<JsonValue> lines = readLog(path);
    PlotSeries s =
        tensor.empty() ? epochSeries(path, lines, metric) : stepSeries(path, lines, tensor, stat);
    s.label = legendLabel(path, lines);
    spec.series.push_back(std::move(s));
  }
  if (tensor.empty()) {
    spec.xLabel = "epoch";
    spec.yLabel = metricTitle(metric);
  } else {
    spec.xLabel = "optimizer step";
    spec.yLabel = tensor + " " + stat;
  }
  spec.title = r["title"].as<std::string>();
  if (spec.title.empty()) spec.title = spec.yLabel + (tensor.empty() ? " per epoch" : " per step");
  writePlot(spec, output);
  std::printf("%s: %zu run%s, %s\n", output.c_str(), spec.series.size(),
              spec.series.size() == 1 ? "" : "s", spec.yLabel.c_str());
  return 0;
}

}  // namespace mantissa::cli
