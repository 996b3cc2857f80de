#include <doctest/doctest.h>

#include <stb/stb_image.h>

#include <cstdlib>
#include <regex>

#include "apps/cli/Apps.h"
#include "apps/cli/CommonOptions.h"
#include "apps/cli/Plot.h"
#include "tests/apps/AppTestUtil.h"

using namespace mantissa;
using apps::test::readFile;
using apps::test::runApp;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

/// A minimal XML well-formedness check for what renderSvg writes: one root, every start tag
/// closed in order, attribute values quoted, entities among the five predefined ones.
bool wellFormedXml(const std::string& s, std::string& why) {
  std::vector<std::string> stack;
  size_t i = s.rfind("?>", 100);
  i = i == std::string::npos ? 0 : i + 2;
  int roots = 0;
  while (i < s.size()) {
    size_t lt = s.find('<', i);
    std::string text = s.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    for (size_t a = text.find('&'); a != std::string::npos; a = text.find('&', a + 1)) {
      static const std::regex entity("^&(amp|lt|gt|quot|apos);");
      if (!std::regex_search(text.substr(a), entity)) return why = "bad entity", false;
    }
    if (lt == std::string::npos) break;
    size_t gt = s.find('>', lt);
    if (gt == std::string::npos) return why = "unclosed tag", false;
    std::string tag = s.substr(lt + 1, gt - lt - 1);
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return why = "mismatched </" + tag, false;
      stack.pop_back();
    } else {
      static const std::regex start(R"(^([A-Za-z][\w:-]*)(\s+[\w:-]+="[^"<]*")*\s*(/?)$)");
      std::smatch m;
      if (!std::regex_match(tag, m, start)) return why = "bad tag <" + tag + ">", false;
      if (stack.empty()) ++roots;
      if (m[3].str().empty()) stack.push_back(m[1].str());
    }
    i = gt + 1;
  }
  if (!stack.empty()) return why = "unclosed <" + stack.back() + ">", false;
  if (roots != 1) return why = "not one root element", false;
  return true;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

const std::string kRunA =
    R"({"event":"epoch","epoch":0,"train_loss":1.2,"test_accuracy":0.5,"images_per_sec":100})"
    "\n"
    R"({"event":"step","epoch":0,"step":1,"loss":1.1,"formats":{"conv1.activation":{"fwd.exponent":-5,"fwd.overflows":0}}})"
    "\n"
    R"({"event":"step","epoch":0,"step":2,"loss":1.0,"formats":{"conv1.activation":{"fwd.exponent":-6,"fwd.overflows":1},"fc.error":{"bwd.exponent":-9}}})"
    "\n"
    R"({"event":"epoch","epoch":1,"train_loss":0.8,"test_accuracy":0.7,"images_per_sec":100})"
    "\n"
    R"({"event":"epoch","epoch":2,"train_loss":null,"test_accuracy":0.8,"images_per_sec":100})"
    "\n"
    R"({"event":"summary","epoch":2,"test_accuracy":0.8,"precision":"flexpoint","wall_seconds":3})"
    "\n";
const std::string kRunB = R"({"event":"epoch","epoch":0,"train_loss":1.5,"test_accuracy":0.4})"
                          "\n\n"
                          R"({"event":"epoch","epoch":1,"train_loss":1.0,"test_accuracy":0.6})"
                          "\n";

}  // namespace

TEST_CASE("Report: niceTicks gives 1-2-5 steps covering the range") {
  std::vector<double> t = cli::niceTicks(0, 1, 5, false);
  REQUIRE(t.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(t[i] == doctest::Approx(0.2 * i));
  CHECK(cli::niceTicks(1, 10, 8, true) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(cli::niceTicks(1, 3, 8, true) == std::vector<double>{1, 2, 3});  // never fractional epochs
  CHECK(cli::niceTicks(-7.5, 42, 5, false) == std::vector<double>{0, 10, 20, 30, 40});
  CHECK(cli::niceTicks(0.913, 0.9172, 6, false).size() >= 3);
  CHECK(cli::niceTicks(1, 1, 5, false).empty());
}

TEST_CASE("Report: several runs on one well-formed SVG, one path per run") {
  apps::test::TempDir dir;
  std::string a = dir.file("flex.jsonl"), b = dir.file("base.jsonl");
  write(a, kRunA);
  write(b, kRunB);
  std::string out = dir.file("charts/acc.svg");
  REQUIRE(runApp(cli::reportApp, "mantissa-report", {a, b, "--output", out}) == 0);
  std::string svg = readFile(out);
  std::string why;
  CHECK_MESSAGE(wellFormedXml(svg, why), why);
  CHECK(count(svg, "<path class=\"series\"") == 2);
  CHECK(svg.find("<title>flex (flexpoint)</title>") != std::string::npos);
  CHECK(svg.find("<title>base</title>") != std::string::npos);
  CHECK(svg.find(">test accuracy<") != std::string::npos);

  // The first run's path has its three epochs left to right, higher accuracy higher up.
  std::smatch m;
  REQUIRE(std::regex_search(
      svg, m,
      std::regex(
          R"re(class="series"[^>]* d="M([\d.]+) ([\d.]+) L([\d.]+) ([\d.]+) L([\d.]+) ([\d.]+)")re")));
  std::vector<double> v;
  for (int i = 1; i <= 6; ++i) v.push_back(std::atof(m[i].str().c_str()));
  CHECK(v[0] < v[2]);
  CHECK(v[2] < v[4]);
  CHECK(v[1] > v[3]);
  CHECK(v[3] > v[5]);
  // Epochs are evenly spaced, and so are accuracies 0.5 -> 0.7 -> 0.8 (2:1 in pixels).
  CHECK(v[4] - v[2] == doctest::Approx(v[2] - v[0]).epsilon(0.01));
  CHECK(v[1] - v[3] == doctest::Approx(2 * (v[3] - v[5])).epsilon(0.01));

  SUBCASE("train_loss skips the null (non-finite) epoch") {
    REQUIRE(runApp(cli::reportApp, "mantissa-report",
                   {a, "--metric", "train_loss", "--output", out}) == 0);
    std::string loss = readFile(out);
    REQUIRE(std::regex_search(loss, m, std::regex(R"re(class="series"[^>]* d="([^"]*)")re")));
    CHECK(count(m[1].str(), "L") == 1);  // two points
  }
  SUBCASE("Autoflex exponent of a tensor over steps") {
    REQUIRE(runApp(cli::reportApp, "mantissa-report",
                   {a, "--tensor", "conv1.activation", "--output", out}) == 0);
    std::string svg2 = readFile(out);
    CHECK(wellFormedXml(svg2, why));
    CHECK(count(svg2, "<path class=\"series\"") == 1);
    CHECK(svg2.find("conv1.activation exponent") != std::string::npos);
    // An error point quantizes only backward: "exponent" falls back to bwd.exponent.
    REQUIRE(runApp(cli::reportApp, "mantissa-report",
                   {a, "--tensor", "fc.error", "--output", out}) == 0);
  }
  SUBCASE("PNG") {
    std::string png = dir.file("acc.png");
    REQUIRE(runApp(cli::reportApp, "mantissa-report",
                   {a, b, "--output", png, "--width", "640", "--height", "400"}) == 0);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(png.c_str(), &w, &h, &c, 3);
    REQUIRE(px != nullptr);
    CHECK(w == 640);
    CHECK(h == 400);
    // Both series colours (tab10 blue and orange) appear, and the background is white.
    int blue = 0, orange = 0;
    for (int i = 0; i < w * h; ++i) {
      blue += px[3 * i] == 31 && px[3 * i + 1] == 119 && px[3 * i + 2] == 180;
      orange += px[3 * i] == 255 && px[3 * i + 1] == 127 && px[3 * i + 2] == 14;
    }
    CHECK(blue > 50);
    CHECK(orange > 50);
    CHECK(px[0] == 255);
    stbi_image_free(px);
  }
}

TEST_CASE("Report: --table lists each run's final figures") {
  apps::test::TempDir dir;
  std::string a = dir.file("r20-flex.jsonl"), b = dir.file("base.jsonl"), p = dir.file("ptq.jsonl");
  write(a, kRunA);
  write(b, kRunB);
  write(p, R"({"event":"ptq_layer","layer":"conv1"})"
           "\n"
           R"({"event":"ptq","format":"e4m3","fp32_accuracy":0.9125,"quantized_accuracy":0.9031,"accuracy_delta":-0.0094})"
           "\n");
  std::string md = dir.file("t.md");
  REQUIRE(runApp(cli::reportApp, "mantissa-report", {a, b, p, "--table", "--output", md}) == 0);
  std::string t = readFile(md);
  // Run A's summary line, run B's last epoch line (epoch 1 = 2 epochs run), the ptq line.
  CHECK(t.find("| run | precision | epoch | test_accuracy | fp32_accuracy | quantized_accuracy "
               "| accuracy_delta | train_loss | wall_seconds |\n") == 0);
  CHECK(t.find("| r20-flex | flexpoint | 3 | 80.00% |  |  |  |  | 3 |\n") != std::string::npos);
  CHECK(t.find("| base |  | 2 | 60.00% |  |  |  | 1 |  |\n") != std::string::npos);
  CHECK(t.find("| ptq | e4m3 |  |  | 91.25% | 90.31% | -0.94 |  |  |\n") != std::string::npos);

  std::string csv = dir.file("t.csv");
  REQUIRE(runApp(cli::reportApp, "mantissa-report",
                 {a, b, "--table", "--columns", "test_accuracy,train_loss", "--output", csv}) == 0);
  CHECK(readFile(csv) == "run,precision,test_accuracy,train_loss\n"
                         "r20-flex,flexpoint,80.00%,\n"
                         "base,,60.00%,1\n");
  CHECK_THROWS_WITH_AS(runApp(cli::reportApp, "mantissa-report",
                              {a, "--table", "--columns", "fid", "--output", csv}),
                       doctest::Contains("--columns: no log's final line has 'fid'"), Error);
  CHECK_THROWS_AS(runApp(cli::reportApp, "mantissa-report", {a, "--table", "--output", dir.file("t.svg")}),
                  cli::UsageError);
}

TEST_CASE("Report: bad inputs name the file, line or option") {
  apps::test::TempDir dir;
  std::string a = dir.file("a.jsonl"), out = dir.file("x.svg");
  write(a, kRunA);
  auto fails = [&](std::vector<std::string> args, const std::string& what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(runApp(cli::reportApp, "mantissa-report", args),
                         doctest::Contains(what.c_str()), Error);
  };
  std::string broken = dir.file("broken.jsonl");
  write(broken, kRunB + "{\"event\":\"epoch\",\"epoch\":2,\n");
  fails({broken, "--output", out}, broken + ":4: not a JSON-lines record");
  write(broken, "[1,2]\n");
  fails({broken, "--output", out}, broken + ":1: not a JSON-lines record (not a JSON object)");
  fails({dir.file("missing.jsonl"), "--output", out}, "missing.jsonl: cannot open");
  fails({a, "--metric", "fid", "--output", out}, "a.jsonl: no epoch line has 'fid'");
  fails({a, "--tensor", "conv9.activation", "--output", out},
        "--tensor 'conv9.activation' is in no step line");
  fails({a, "--tensor", "conv1.activation", "--stat", "alpha", "--output", out}, "has no 'alpha'");
  write(broken, kRunB);
  fails({broken, "--tensor", "conv1.activation", "--output", out}, "--metrics-every");
  CHECK_THROWS_AS(runApp(cli::reportApp, "mantissa-report", {a, "--output", dir.file("x.pdf")}),
                  cli::UsageError);
  CHECK_THROWS_AS(runApp(cli::reportApp, "mantissa-report", {a}), cli::UsageError);
  CHECK_THROWS_AS(runApp(cli::reportApp, "mantissa-report", {"--output", out}), cli::UsageError);
}
