#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/Error.h"
#include "data/detail/FileBytes.h"
#include "tests/data/fuzz/FuzzInputs.h"

using namespace mantissa;

namespace {
std::vector<std::string> corpusFiles(const char* sub) {
  std::vector<std::string> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(MANTISSA_DATA_CORPUS_DIR) + "/" + sub)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// Each input must parse or give a mantissa::Error; any other outcome fails the test (and a
/// crash or out-of-bounds read fails it under the sanitizers).
template <class Parse>
void runCorpus(const char* sub, Parse parse, size_t minFiles) {
  std::vector<std::string> files = corpusFiles(sub);
  CHECK(files.size() >= minFiles);
  int parsed = 0, rejected = 0;
  for (const std::string& f : files) {
    CAPTURE(f);
    std::vector<uint8_t> bytes = data::detail::readFile(f);
    try {
      parse(bytes.data(), bytes.size());
      ++parsed;
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("fuzz") != std::string::npos);  // names the input
      ++rejected;
    }
  }
  // The corpus keeps both kinds: valid seeds and the malformed inputs the fuzzer found.
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}
}  // namespace

TEST_CASE("Fuzz corpus: every kept IDX input parses or is a clean Error") {
  runCorpus("idx", data::fuzz::parseIdxInput, 10);
}

TEST_CASE("Fuzz corpus: every kept CIFAR input parses or is a clean Error") {
  runCorpus("cifar", data::fuzz::parseCifarInput, 5);
}
