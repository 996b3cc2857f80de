#include "optim/Optimizer.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include "core/autograd/Autograd.h"
#include "formats/QuantPoint.h"

namespace mantissa::optim {

namespace {

std::string formatDouble(double v) {
  // Shortest representation that parses back to the same double: resume is exact.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

Optimizer::Optimizer(std::string type, NamedParameters params, double lr)
    : type_(std::move(type)), params_(std::move(params)) {
  setLr(lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    MANTISSA_CHECK(!name.empty(), type_, ": parameter ", i, " has an empty name");
    MANTISSA_CHECK(name.find('/') == std::string::npos, type_, ": parameter name '", name,
                   "' contains '/', which separates state keys (use dotted names)");
    MANTISSA_CHECK(p.defined(), type_, ": parameter '", name, "' is undefined");
    MANTISSA_CHECK(p.dtype() == DType::F32, type_, ": parameter '", name, "' has dtype ",
                   dtypeName(p.dtype()), "; optimizers update f32 parameters");
    MANTISSA_CHECK(p.isContiguous(), type_, ": parameter '", name, "' is not contiguous");
    MANTISSA_CHECK(p.isLeaf(), type_, ": parameter '", name, "' is the result of '",
                   p.gradFnName(), "', not a leaf");
    auto [it, inserted] = state_.try_emplace(name);
    MANTISSA_CHECK(inserted, type_, ": parameter name '", name, "' appears twice");
  }
  // Two names for one tensor would be updated twice per step.
  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t j = i + 1; j < params_.size(); ++j) {
      const Tensor &a = params_[i].second, &b = params_[j].second;
      MANTISSA_CHECK(!(a.storage() == b.storage() && a.offset() == b.offset()), type_,
                     ": parameters '", params_[i].first, "' and '", params_[j].first,
                     "' are the same tensor");
    }
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::setLr(double lr) {
  MANTISSA_CHECK(std::isfinite(lr) && lr >= 0, type_, ": learning rate ", lr,
                 " must be finite and >= 0");
  lr_ = lr;
}

Optimizer::ParamState& Optimizer::stateOf(const std::string& name, const char* what) {
  auto it = state_.find(name);
  MANTISSA_CHECK(it != state_.end(), type_, ": ", what, ": no parameter named '", name, "'");
  return it->second;
}

const Optimizer::ParamState& Optimizer::stateOf(const std::string& name, const char* what) const {
  auto it = state_.find(name);
  MANTISSA_CHECK(it != state_.end(), type_, ": ", what, ": no parameter named '", name, "'");
  return it->second;
}

void Optimizer::step() {
  autograd::NoGradGuard noGrad;
  ++iteration_;
  for (auto& [name, param] : params_) {
    Tensor g = param.grad();
    if (!g.defined()) continue;
    MANTISSA_CHECK(g.shape() == param.shape(), type_, ": gradient of '", name, "' has shape ",
                   toString(g.shape()), " but the parameter has shape ", toString(param.shape()));
    MANTISSA_CHECK(g.dtype() == DType::F32, type_, ": gradient of '", name, "' has dtype ",
                   dtypeName(g.dtype()));
    ParamState& st = state_.at(name);
    ++st.step;
    const bool first = st.slots.empty();
    update(param, g.detach().contiguous(), st.slots, st.step);
    // Subclasses create their slots lazily on the first update; check that they created what
    // slotNames() promises, since strict loading relies on that list.
    if (first) {
      std::vector<std::string> expected = slotNames();
      MANTISSA_CHECK(st.slots.size() == expected.size(), type_, ": update of '", name, "' created ",
                     st.slots.size(), " state slots, slotNames() lists ", expected.size());
    }
    // The master snap comes after the FP32 update (HBFP emulator's BFPOptim order, FORMATS.md
    // §3.4): the next forward and the next update start from the stored format.
    snapToMaster(name, param, st.master);
  }
}

void Optimizer::zeroGrad() {
  for (auto& [name, param] : params_) param.zeroGrad();
}

int64_t Optimizer::paramStep(const std::string& name) const { return stateOf(name, "paramStep").step; }

Tensor Optimizer::slot(const std::string& name, const std::string& slotName) const {
  const ParamState& st = stateOf(name, "slot");
  auto it = st.slots.find(slotName);
  return it == st.slots.end() ? Tensor() : it->second;
}

// ---- master formats -------------------------------------------------------------------------

void Optimizer::setMasterFormat(const std::string& name, formats::FormatPtr format,
                                int64_t blockAxis, uint64_t seed) {
  Master& m = stateOf(name, "setMasterFormat").master;
  if (!format || format->isIdentity()) {
    m = Master{};
    return;
  }
  if (!m.format || m.format->spec() != format->spec()) m.state = format->makeState();
  m.format = std::move(format);
  m.blockAxis = blockAxis;
  m.seed = seed;
}

formats::FormatPtr Optimizer::masterFormat(const std::string& name) const {
  return stateOf(name, "masterFormat").master.format;
}

const formats::FormatState* Optimizer::masterState(const std::string& name) const {
  return stateOf(name, "masterState").master.state.get();
}

void Optimizer::snapToMaster(const std::string& name, Tensor& param, Master& m) {
  if (!m.format) return;
  const std::string point = name + ".master";
  formats::QuantizeArgs args;
  args.role = formats::Role::Master;
  args.blockAxis = m.blockAxis;
  args.seed = m.seed;
  args.stream = formats::streamOf(point);
  args.step = static_cast<uint64_t>(iteration_ - 1);
  args.pointName = point;
  Tensor q = m.format->quantize(param.detach(), args, m.state.get());
  MANTISSA_CHECK(q.defined() && q.shape() == param.shape() && q.dtype() == DType::F32, type_,
                 ": master format '", m.format->spec(), "' returned a tensor of shape ",
                 q.defined() ? toString(q.shape()) : std::string("(undefined)"), " for '", name,
                 "' of shape ", toString(param.shape()));
  if (q.storage() == param.storage() && q.offset() == param.offset()) return;  // snapped in place
  Tensor qc = q.contiguous();
  std::memcpy(param.data<float>(), qc.data<float>(), param.nbytes());
}

// ---- state ----------------------------------------------------------------------------------

void Optimizer::saveState(io::StateDict& out, const std::string& prefix) const {
  out.attrs[prefix + "type"] = type_;
  out.attrs[prefix + "lr"] = formatDouble(lr_);
  out.attrs[prefix + "step"] = std::to_string(iteration_);
  for (const auto& [name, p] : params_) {
    const ParamState& st = state_.at(name);
    const std::string base = prefix + name + "/";
    out.attrs[base + "step"] = std::to_string(st.step);
    // Deep copies: later in-place updates must not change a saved state.
    for (const auto& [slotName, t] : st.slots) out.tensors[base + slotName] = t.clone();
    if (st.master.format) {
      out.attrs[base + "master/format"] = st.master.format->spec();
      if (st.master.state) st.master.state->saveState(out, base + "master/state/");
    }
  }
}

void Optimizer::loadState(const io::StateDict& in, const std::string& prefix) {
  auto attr = [&](const std::string& key) -> const std::string& {
    auto it = in.attrs.find(key);
    MANTISSA_CHECK(it != in.attrs.end(), type_, ": missing attribute '", key, "' in the saved state");
    return it->second;
  };
  auto toInt = [&](const std::string& key) {
    const std::string& v = attr(key);
    int64_t x = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), x);
    MANTISSA_CHECK(res.ec == std::errc() && res.ptr == v.data() + v.size() && x >= 0, type_,
                   ": attribute '", key, "' = '", v, "' is not a non-negative integer");
    return x;
  };

  const std::string& savedType = attr(prefix + "type");
  MANTISSA_CHECK(savedType == type_, type_, ": the state under '", prefix, "' was saved by a '",
                 savedType, "' optimizer");
  const std::string& lrText = attr(prefix + "lr");
  double lr = 0;
  auto lrRes = std::from_chars(lrText.data(), lrText.data() + lrText.size(), lr);
  MANTISSA_CHECK(lrRes.ec == std::errc() && lrRes.ptr == lrText.data() + lrText.size() &&
                     std::isfinite(lr) && lr >= 0,
                 type_, ": attribute '", prefix, "lr' = '", lrText, "' is not a learning rate");
  const int64_t iteration = toInt(prefix + "step");

  // Everything is parsed into `next` first and committed at the end, so a failed load leaves
  // the optimizer as it was (a half-loaded optimizer would silently train with mixed state).
  std::set<std::string> known = {prefix + "type", prefix + "lr", prefix + "step"};
  std::vector<std::string> ownedSubtrees;  // keys below these belong to master format states
  std::map<std::string, ParamState> next;
  const std::vector<std::string> slots = slotNames();
  for (const auto& [name, p] : params_) {
    const std::string base = prefix + name + "/";
    const ParamState& cur = state_.at(name);
    ParamState ns;
    ns.step = toInt(base + "step");
    known.insert(base + "step");
    if (ns.step > 0) {
      for (const std::string& s : slots) {
        const std::string key = base + s;
        auto it = in.tensors.find(key);
        MANTISSA_CHECK(it != in.tensors.end(), type_, ": missing tensor '", key,
                       "' in the saved state (parameter '", name, "' has taken ", ns.step,
                       " steps)");
        const Tensor& t = it->second;
        MANTISSA_CHECK(t.shape() == p.shape() && t.dtype() == DType::F32, type_, ": '", key,
                       "' is ", dtypeName(t.dtype()), " ", toString(t.shape()),
                       " but parameter '", name, "' is f32 ", toString(p.shape()));
        ns.slots[s] = t.contiguous().clone();
        known.insert(key);
      }
    }
    const std::string formatKey = base + "master/format";
    if (cur.master.format) {
      const std::string& spec = attr(formatKey);
      MANTISSA_CHECK(spec == cur.master.format->spec(), type_, ": '", formatKey, "' is '", spec,
                     "' but the master format set for '", name, "' is '",
                     cur.master.format->spec(), "' (set the saved format before loading)");
      known.insert(formatKey);
      ns.master.format = cur.master.format;
      ns.master.blockAxis = cur.master.blockAxis;
      ns.master.seed = cur.master.seed;
      if (cur.master.state) {
        // Load into a copy so a failure leaves the optimizer as it was.
        ns.master.state = cur.master.state->clone();
        ns.master.state->loadState(in, base + "master/state/");
        ownedSubtrees.push_back(base + "master/state/");
      }
    } else {
      auto it = in.attrs.find(formatKey);
      MANTISSA_CHECK(it == in.attrs.end(), type_, ": the saved state stores '", name,
                     "' in master format '", (it == in.attrs.end() ? "" : it->second),
                     "' but none is set here (call setMasterFormat before loading)");
    }
    next.emplace(name, std::move(ns));
  }

  auto checkExtra = [&](const std::string& key) {
    if (!startsWith(key, prefix) || known.count(key)) return;
    for (const std::string& sub : ownedSubtrees) {
      if (startsWith(key, sub)) return;
    }
    MANTISSA_CHECK(false, type_, ": unexpected key '", key, "' in the saved state (no parameter "
                   "or slot of this optimizer has that name)");
  };
  for (auto it = in.tensors.lower_bound(prefix); it != in.tensors.end() && startsWith(it->first, prefix); ++it) {
    checkExtra(it->first);
  }
  for (auto it = in.attrs.lower_bound(prefix); it != in.attrs.end() && startsWith(it->first, prefix); ++it) {
    checkExtra(it->first);
  }

  state_ = std::move(next);
  lr_ = lr;
  iteration_ = iteration;
}

}  // namespace mantissa::optim
