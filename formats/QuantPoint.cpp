#include "formats/QuantPoint.h"

#include <atomic>
#include <cstring>
#include <sstream>

#include "core/Env.h"
#include "core/autograd/Autograd.h"

namespace mantissa::formats {

namespace {

bool initialPackedSaves() { return envSwitch("MANTISSA_PACKED_SAVES", true); }

std::atomic<bool>& gPackedSaves() {
  static std::atomic<bool> on{initialPackedSaves()};
  return on;
}

}  // namespace

void setPackedSavesEnabled(bool on) { gPackedSaves() = on; }

bool packedSavesEnabled() { return gPackedSaves().load(std::memory_order_relaxed); }

uint64_t streamOf(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

QuantPoint::QuantPoint(std::string name, Role forwardRole, Role backwardRole)
    : name_(std::move(name)), stream_(streamOf(name_)) {
  fwd_.role = forwardRole;
  bwd_.role = backwardRole;
  setFormats(nullptr, nullptr);
}

void QuantPoint::setName(std::string name) {
  name_ = std::move(name);
  stream_ = streamOf(name_);
}

void QuantPoint::setFormats(FormatPtr forward, FormatPtr backward) {
  auto assign = [](QuantDirection& dir, FormatPtr f) {
    if (!f) f = parse("fp32");
    if (dir.format && dir.format->spec() == f->spec()) return;
    dir.format = std::move(f);
    dir.state = dir.format->makeState();
  };
  assign(fwd_, std::move(forward));
  assign(bwd_, std::move(backward));
}

template <class Convert>
auto QuantPoint::convert(QuantDirection& dir, int64_t blockAxis, std::span<const int64_t> blockAxes,
                         const Convert& fn) {
  QuantizeArgs args;
  args.role = dir.role;
  args.blockAxis = blockAxis;
  args.blockAxes = blockAxes;
  args.seed = seed_;
  args.stream = stream_ ^ (&dir == &bwd_ ? 0x9e3779b97f4a7c15ull : 0);
  args.step = dir.calls++;
  args.pointName = name_;
  dir.lastStats = {};
  args.stats = &dir.lastStats;
  auto out = fn(args, dir.state.get());
  dir.totalStats.count += dir.lastStats.count;
  dir.totalStats.saturated += dir.lastStats.saturated;
  dir.totalStats.flushed += dir.lastStats.flushed;
  dir.totalStats.nonFinite += dir.lastStats.nonFinite;
  return out;
}

Tensor QuantPoint::run(QuantDirection& dir, const Tensor& x, int64_t blockAxis,
                       std::span<const int64_t> blockAxes) {
  if (dir.format->isIdentity()) return x;
  return convert(dir, blockAxis, blockAxes, [&](const QuantizeArgs& args, FormatState* state) {
    return dir.format->quantize(x, args, state);
  });
}

Bf16Quantized QuantPoint::runBf16(QuantDirection& dir, const Tensor& x,
                                  std::span<const int64_t> blockAxes) {
  if (dir.format->isIdentity()) {
    // As run: fp32 returns x and counts no conversion.
    QuantizeArgs args;
    args.pointName = name_;
    return dir.format->quantizeBf16(x, args, nullptr);
  }
  // The arguments run() would get from quantize*(x, axis) or quantize*Along(x, axes).
  const int64_t blockAxis = blockAxes.size() == 1 ? blockAxes[0] : -1;
  if (blockAxes.size() < 2) blockAxes = {};
  return convert(dir, blockAxis, blockAxes, [&](const QuantizeArgs& args, FormatState* state) {
    return dir.format->quantizeBf16(x, args, state);
  });
}

Bf16Quantized QuantPoint::quantizeForwardBf16(const Tensor& x, std::span<const int64_t> blockAxes) {
  return runBf16(fwd_, x, blockAxes);
}

Bf16Quantized QuantPoint::quantizeBackwardBf16(const Tensor& g,
                                               std::span<const int64_t> blockAxes) {
  return runBf16(bwd_, g, blockAxes);
}

Encoded QuantPoint::encodeForward(const Tensor& x, Tensor& values, int64_t blockAxis) {
  if (fwd_.format->isIdentity()) {
    // As quantizeForward: fp32 returns x and counts no conversion.
    values = x;
    QuantizeArgs args;
    args.blockAxis = blockAxis;
    args.pointName = name_;
    return fwd_.format->encode(x, args, nullptr);
  }
  return convert(fwd_, blockAxis, {}, [&](const QuantizeArgs& args, FormatState* state) {
    return fwd_.format->encodeWithValues(x, args, state, values);
  });
}

Encoded QuantPoint::runEncode(QuantDirection& dir, const Tensor& x, int64_t blockAxis,
                              std::span<const int64_t> blockAxes) {
  if (dir.format->isIdentity()) {
    // As run: fp32 counts no conversion.
    QuantizeArgs args;
    args.blockAxis = blockAxis;
    args.blockAxes = blockAxes;
    args.pointName = name_;
    return dir.format->encode(x, args, nullptr);
  }
  // The arguments run(dir, x, blockAxis, blockAxes) gives the quantizer.
  return convert(dir, blockAxis, blockAxes, [&](const QuantizeArgs& args, FormatState* state) {
    return dir.format->encode(x, args, state);
  });
}

Encoded QuantPoint::encodeForward(const Tensor& x, int64_t blockAxis) {
  return runEncode(fwd_, x, blockAxis);
}

Encoded QuantPoint::encodeBackward(const Tensor& g, int64_t blockAxis) {
  return runEncode(bwd_, g, blockAxis);
}

Encoded QuantPoint::encodeForwardAlong(const Tensor& x, std::span<const int64_t> blockAxes) {
  return runEncode(fwd_, x, -1, blockAxes);
}

Encoded QuantPoint::encodeBackwardAlong(const Tensor& g, std::span<const int64_t> blockAxes) {
  return runEncode(bwd_, g, -1, blockAxes);
}

Tensor QuantPoint::quantizeForward(const Tensor& x, int64_t blockAxis) {
  return run(fwd_, x, blockAxis);
}

Tensor QuantPoint::quantizeBackward(const Tensor& g, int64_t blockAxis) {
  return run(bwd_, g, blockAxis);
}

Tensor QuantPoint::quantizeForwardAlong(const Tensor& x, std::span<const int64_t> blockAxes) {
  return run(fwd_, x, -1, blockAxes);
}

Tensor QuantPoint::quantizeBackwardAlong(const Tensor& g, std::span<const int64_t> blockAxes) {
  return run(bwd_, g, -1, blockAxes);
}

void QuantPoint::resetStats() {
  fwd_.totalStats = {};
  bwd_.totalStats = {};
}

std::vector<std::pair<std::string, double>> QuantPoint::metrics() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto* dir : {&fwd_, &bwd_}) {
    if (dir->format->isIdentity()) continue;
    std::string p = dir == &fwd_ ? "fwd." : "bwd.";
    if (dir->state) {
      for (auto& [k, v] : dir->state->metrics()) out.emplace_back(p + k, v);
    }
    if (dir->totalStats.count > 0) {
      double n = static_cast<double>(dir->totalStats.count);
      out.emplace_back(p + "saturated", dir->totalStats.saturated / n);
      out.emplace_back(p + "flushed", dir->totalStats.flushed / n);
    }
  }
  return out;
}

std::string QuantPoint::describe() const {
  std::ostringstream os;
  os << name_ << "  fwd=" << fwd_.format->spec() << "  bwd=" << bwd_.format->spec();
  return os.str();
}

void QuantPoint::saveState(io::StateDict& out, const std::string& prefix) const {
  for (const auto* dir : {&fwd_, &bwd_}) {
    std::string p = prefix + (dir == &fwd_ ? "forward/" : "backward/");
    out.attrs[p + "format"] = dir->format->spec();
    out.attrs[p + "role"] = roleName(dir->role);
    out.tensors[p + "calls"] = Tensor::fromInts({static_cast<int64_t>(dir->calls)}, {1});
    if (dir->state) dir->state->saveState(out, p + "state/");
  }
  out.tensors[prefix + "seed"] = Tensor::fromInts({static_cast<int64_t>(seed_)}, {1});
}

void QuantPoint::loadState(const io::StateDict& in, const std::string& prefix) {
  for (auto* dir : {&fwd_, &bwd_}) {
    std::string p = prefix + (dir == &fwd_ ? "forward/" : "backward/");
    const std::string& spec = in.attr(p + "format");
    MANTISSA_CHECK(spec == dir->format->spec(), "quantization point '", name_, "': saved ",
                   (dir == &fwd_ ? "forward" : "backward"), " format '", spec,
                   "' differs from the current '", dir->format->spec(),
                   "' (change the recipe explicitly to resume with another precision)");
    dir->calls = static_cast<uint64_t>(in.tensor(p + "calls").item<int64_t>());
    if (dir->state) dir->state->loadState(in, p + "state/");
  }
  seed_ = static_cast<uint64_t>(in.tensor(prefix + "seed").item<int64_t>());
}

Tensor quantize(const Tensor& x, const QuantPointPtr& point, int64_t blockAxis) {
  MANTISSA_CHECK(point != nullptr, "quantize: null quantization point");
  Tensor out = point->quantizeForward(x.detach(), blockAxis);
  if (out.isSameAs(x) || out.storage() == x.storage()) out = x.detach();
  if (autograd::needsGrad({x})) {
    autograd::record(out, "quantize(" + point->name() + ")", {x},
                     [point, blockAxis](const Tensor& g) -> autograd::GradList {
                       return {point->quantizeBackward(g, blockAxis)};
                     });
  }
  return out;
}

}  // namespace mantissa::formats
