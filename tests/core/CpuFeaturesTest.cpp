#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/CpuFeatures.h"

using namespace mantissa;

TEST_CASE("cpuFeatures: agrees with the kernel's CPU flags in /proc/cpuinfo") {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::string> flags;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;  // the first processor's flags
  }
  if (flags.empty()) {
    MESSAGE("no /proc/cpuinfo flags line: nothing to compare");
    return;
  }
  auto has = [&](const char* f) { return flags.count(f) > 0; };
  const CpuFeatures& f = cpuFeatures();
  const bool avx512 = has("avx512f") && has("avx512bw") && has("avx512dq") && has("avx512vl");
  CHECK(f.avx512 == avx512);
  CHECK(f.avx512Vbmi2 == (avx512 && has("avx512_vbmi2")));
  CHECK(f.avx512Vnni == (avx512 && has("avx512_vnni")));
  CHECK(f.avx512Bf16 == has("avx512_bf16"));
  CHECK(&cpuFeatures() == &f);  // computed once
}
