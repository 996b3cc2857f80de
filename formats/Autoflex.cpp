// Autoflex: per-tensor exponent management for Flexpoint.
// Köster et al., "Flexpoint: An Adaptive Numerical Format for Efficient Training of Deep Neural
// Networks", NIPS 2017; constants and control flow from the port of neon's flexsim in
// ngraph-python (flexgpu.py / autoflex.py, before commit f3f07758). docs/formats.md "Autoflex".
// The exponent is a power of two kept as dec (scale = 2^-dec); it is predicted before a write
// from the maxima of earlier writes. Overflow (saturated integers) is detected after the write;
// it clears the history and doubles the recorded maximum so the next exponent grows.
#include "formats/Autoflex.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <sstream>

#include "core/Error.h"

namespace mantissa::formats {

namespace {

int64_t bitLength(int64_t v) { return v <= 0 ? 0 : 64 - std::countl_zero(static_cast<uint64_t>(v)); }

Tensor scalarI64(int64_t v) { return Tensor::fromInts({v}, {1}); }

int64_t readI64(const io::StateDict& in, const std::string& key) {
  const Tensor& t = in.tensor(key);
  MANTISSA_CHECK(t.numel() == 1, "state: '", key, "' must hold one value, got ", t.numel());
  return static_cast<int64_t>(t.at(std::vector<int64_t>(t.shape().size(), 0)));
}

}  // namespace

Autoflex::Autoflex(AutoflexConfig config) : config_(config) {
  MANTISSA_CHECK(config_.mantissaBits >= 4 && config_.mantissaBits <= 24,
                 "Autoflex: mantissa bits must be in [4, 24], got ", config_.mantissaBits);
  MANTISSA_CHECK(config_.history >= 1, "Autoflex: history must be >= 1, got ", config_.history);
  MANTISSA_CHECK(config_.decMin <= config_.decMax, "Autoflex: dec_min ", config_.decMin,
                 " > dec_max ", config_.decMax);
  MANTISSA_CHECK(config_.initTries >= 1, "Autoflex: init_tries must be >= 1");
  s_.dec = clampDec(config_.initDec);
}

int Autoflex::clampDec(int64_t dec) const {
  return static_cast<int>(std::clamp<int64_t>(dec, config_.decMin, config_.decMax));
}

void Autoflex::restore(const AutoflexSnapshot& s) {
  MANTISSA_CHECK(static_cast<int64_t>(s.fifo.size()) <= config_.history, "Autoflex: history of ",
                 s.fifo.size(), " entries exceeds its depth ", config_.history);
  MANTISSA_CHECK(s.dec >= config_.decMin && s.dec <= config_.decMax, "Autoflex: dec ", s.dec,
                 " outside [", config_.decMin, ", ", config_.decMax, "]");
  MANTISSA_CHECK(!s.dirty || !s.fifo.empty(), "Autoflex: a dirty state needs a non-empty history");
  s_ = s;
}

int Autoflex::decForMax(double maxval) const {
  // Port get_scale: keep the exponent bits of float32(maxval) and multiply by 2^-(high_bit-1),
  // so the predicted max lands in [2^(N-2), 2^(N-1)) integer units. A zero max gives scale 1.
  float f = static_cast<float>(maxval);
  if (f == 0.0f) return clampDec(0);
  if (!std::isfinite(f)) return config_.decMin;
  int e = std::ilogb(f);
  return clampDec(static_cast<int64_t>(config_.mantissaBits - 2) - e);
}

int Autoflex::predictDec(int64_t adjustCount) const {
  MANTISSA_CHECK(!s_.fifo.empty(), "Autoflex: prediction from an empty history");
  const std::vector<double>& st = s_.fifo;
  const double scale = std::ldexp(1.0, -s_.dec);
  // Same evaluation order as the port (Python floats are doubles; sum() runs left to right).
  double rN = 1.0 / static_cast<double>(st.size());
  double sum = 0.0;
  for (double v : st) sum += v;
  double mean = sum * rN;
  double sq = 0.0;
  for (double v : st) sq += (v - mean) * (v - mean);
  double stdev = std::sqrt(sq * rN);
  double maxval;
  if (adjustCount > (s_.age >> 4)) {
    // Frequently written tensor: max of the history + k sigma + a margin in LSBs.
    maxval = *std::max_element(st.begin(), st.end()) + config_.sigmas * stdev +
             scale * config_.margin;
  } else {
    // Rarely written (re-scaled in at most 1/16 of the caller's rounds): trust only the two
    // most recent maxima and add a large margin.
    double recent = st.back();
    if (st.size() >= 2) recent = std::max(recent, st[st.size() - 2]);
    maxval = recent + scale * config_.rareMargin;
  }
  return decForMax(maxval);
}

int Autoflex::nextDec() const {
  return s_.dirty ? predictDec(s_.adjustCount + 1) : s_.dec;
}

int Autoflex::initialize(const std::function<int64_t(int dec)>& maxabsAt) {
  const int highBit = config_.mantissaBits - 1;
  const int64_t high = (int64_t{1} << highBit) - 1;  // 32767 for flex16
  const int64_t low = int64_t{1} << (highBit - 1);   // 16384
  const int64_t trust = int64_t{1} << std::max((highBit >> 1) - 2, 0);  // 32: enough bits seen
  while (!s_.initialized) {
    // The port adds 1 to the kernel's maxabs here ("to be consistent with adjust_scale").
    int64_t used = maxabsAt(s_.dec) + 1;
    int64_t dec = s_.dec;
    if (used >= high) {
      // Saturated: the size of the overshoot is unknown, so jump by half the bit width.
      dec -= highBit >> 1;
    } else if (used < low) {
      // Under-used: jump so the max lands in the top bit; accept only when enough bits were
      // seen for the jump to be reliable (prevents ping-pong).
      dec += highBit - bitLength(used);
      if (used >= trust) s_.initialized = true;
    } else {
      s_.initialized = true;
    }
    s_.dec = clampDec(dec);
    s_.initCount += 1;
    if (s_.initCount > config_.initTries) {
      // Probably an all-zero tensor: start from scale 1 and let the steady state adapt. As in
      // the port this also applies when the last attempt happened to succeed.
      s_.dec = clampDec(0);
      s_.initCount = 0;
      s_.initialized = true;
    }
  }
  return s_.dec;
}

void Autoflex::recordWrite(int64_t maxabsInt, uint64_t step) {
  if (s_.dirty) {
    // The write used nextDec(): commit that prediction (port adjust_scale).
    s_.adjustCount += 1;
    s_.dec = predictDec(s_.adjustCount);
    s_.dirty = false;
  }
  // Port refresh(): overflow detection, then the new maximum (float units) into the FIFO.
  s_.age = static_cast<int64_t>(step) + 1;
  int64_t maxabs = maxabsInt;
  const int64_t high = (int64_t{1} << (config_.mantissaBits - 1)) - 1;
  if (maxabs >= high) {
    s_.overflows += 1;
    s_.fifo.clear();
    // Simulates one bit of headroom so the exponent can grow past the saturation point.
    maxabs <<= 1;
  }
  s_.fifo.push_back(static_cast<double>(maxabs) * std::ldexp(1.0, -s_.dec));
  if (static_cast<int64_t>(s_.fifo.size()) > config_.history) s_.fifo.erase(s_.fifo.begin());
  s_.lastMaxabs = maxabs;
  s_.dirty = true;
  s_.writes += 1;
}

std::unique_ptr<FormatState> Autoflex::clone() const { return std::make_unique<Autoflex>(*this); }

void Autoflex::saveState(io::StateDict& out, const std::string& prefix) const {
  out.tensors[prefix + "dec"] = scalarI64(s_.dec);
  // The FIFO is stored at its full depth (zero padded) with its length, so the dataset shape
  // never depends on how many writes happened.
  Tensor fifo = Tensor::zeros({config_.history}, DType::F64);
  std::copy(s_.fifo.begin(), s_.fifo.end(), fifo.data<double>());
  out.tensors[prefix + "history"] = fifo;
  out.tensors[prefix + "history_len"] = scalarI64(static_cast<int64_t>(s_.fifo.size()));
  out.tensors[prefix + "initialized"] = scalarI64(s_.initialized);
  out.tensors[prefix + "init_count"] = scalarI64(s_.initCount);
  out.tensors[prefix + "adjust_count"] = scalarI64(s_.adjustCount);
  out.tensors[prefix + "age"] = scalarI64(s_.age);
  out.tensors[prefix + "dirty"] = scalarI64(s_.dirty);
  out.tensors[prefix + "overflows"] = scalarI64(s_.overflows);
  out.tensors[prefix + "last_maxabs"] = scalarI64(s_.lastMaxabs);
  out.tensors[prefix + "writes"] = scalarI64(s_.writes);
}

void Autoflex::loadState(const io::StateDict& in, const std::string& prefix) {
  AutoflexSnapshot s;
  s.dec = static_cast<int>(readI64(in, prefix + "dec"));
  int64_t len = readI64(in, prefix + "history_len");
  const Tensor& hist = in.tensor(prefix + "history");
  MANTISSA_CHECK(hist.dtype() == DType::F64 && hist.dim() == 1,
                 "state: '", prefix, "history' must be a 1-D f64 tensor");
  MANTISSA_CHECK(len >= 0 && len <= hist.numel() && len <= config_.history, "state: '", prefix,
                 "history_len' = ", len, " does not fit the history depth ", config_.history);
  std::vector<double> all = hist.toVector<double>();
  s.fifo.assign(all.begin(), all.begin() + len);
  s.initialized = readI64(in, prefix + "initialized") != 0;
  s.initCount = readI64(in, prefix + "init_count");
  s.adjustCount = readI64(in, prefix + "adjust_count");
  s.age = readI64(in, prefix + "age");
  s.dirty = readI64(in, prefix + "dirty") != 0;
  s.overflows = readI64(in, prefix + "overflows");
  s.lastMaxabs = readI64(in, prefix + "last_maxabs");
  s.writes = readI64(in, prefix + "writes");
  restore(s);
}

std::string Autoflex::describe() const {
  std::ostringstream os;
  os << "dec=" << s_.dec << " overflows=" << s_.overflows << " history=" << s_.fifo.size() << "/"
     << config_.history << (s_.initialized ? "" : " uninitialized");
  return os.str();
}

std::vector<std::pair<std::string, double>> Autoflex::metrics() const {
  return {{"exponent", -static_cast<double>(s_.dec)},
          {"dec", static_cast<double>(s_.dec)},
          {"overflows", static_cast<double>(s_.overflows)},
          {"initialized", s_.initialized ? 1.0 : 0.0},
          {"maxabs", static_cast<double>(s_.lastMaxabs)}};
}

}  // namespace mantissa::formats
