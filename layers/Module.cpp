#include "layers/Module.h"

#include <set>
#include <sstream>

#include "core/autograd/Autograd.h"
#include "core/ops/detail/Strided.h"
#include "formats/PrecisionSchedule.h"

namespace mantissa::nn {

Module::Module(std::string typeName) : typeName_(std::move(typeName)) {}

void Module::checkName(const std::string& name) const {
  MANTISSA_CHECK(!name.empty() && name.find('.') == std::string::npos &&
                     name.find('/') == std::string::npos,
                 typeName_, ": bad state name '", name, "' (non-empty, no '.' or '/')");
  auto taken = [&](const auto& list) {
    for (const auto& [n, v] : list) {
      if (n == name) return true;
    }
    return false;
  };
  MANTISSA_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), typeName_,
                 ": name '", name, "' registered twice");
}

Tensor Module::registerParameter(std::string name, Tensor value) {
  checkName(name);
  MANTISSA_CHECK(value.dtype() == DType::F32, typeName_, ": parameter '", name, "' must be f32");
  Tensor p = value.isLeaf() && value.isContiguous() ? value : value.detach().contiguous();
  if (!p.isLeaf()) p = p.detach();
  p.requiresGrad();
  parameters_.emplace_back(std::move(name), p);
  return p;
}

Tensor Module::registerBuffer(std::string name, Tensor value) {
  checkName(name);
  Tensor b = value.detach().contiguous();
  buffers_.emplace_back(std::move(name), b);
  return b;
}

void Module::addChild(std::string name, std::shared_ptr<Module> module) {
  checkName(name);
  MANTISSA_CHECK(module != nullptr, typeName_, ": submodule '", name, "' is null");
  children_.emplace_back(std::move(name), std::move(module));
}

formats::QuantPointPtr Module::registerQuantPoint(std::string name, formats::Role forwardRole,
                                                  formats::Role backwardRole) {
  for (const auto& [n, p] : quantPoints_) {
    MANTISSA_CHECK(n != name, typeName_, ": quantization point '", name, "' registered twice");
  }
  auto point = std::make_shared<formats::QuantPoint>(name, forwardRole, backwardRole);
  quantPoints_.emplace_back(std::move(name), point);
  return point;
}

void Module::setTensor(std::string_view name, const Tensor& value) {
  for (auto* list : {&parameters_, &buffers_}) {
    for (auto& [n, t] : *list) {
      if (n != name) continue;
      MANTISSA_CHECK(value.shape() == t.shape(), typeName_, ": '", name, "' has shape ",
                     toString(t.shape()), ", got ", toString(value.shape()));
      // Copy into the existing storage so every handle (layer members, optimizer) sees it.
      autograd::NoGradGuard guard;
      Tensor dst = t.detach();
      ops::detail::copyStrided(value.detach().contiguous().to(t.dtype()), dst);
      return;
    }
  }
  MANTISSA_CHECK(false, typeName_, ": no parameter or buffer named '", name, "'");
}

template <class F>
void Module::visit(const std::string& prefix, F&& f) const {
  // Iterative pre-order walk: (module, dotted prefix).
  std::vector<std::pair<const Module*, std::string>> stack{{this, prefix}};
  while (!stack.empty()) {
    auto [m, p] = stack.back();
    stack.pop_back();
    f(*m, p);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it) {
      stack.emplace_back(it->second.get(), p + it->first + ".");
    }
  }
}

Named<Tensor> Module::namedParameters() const {
  Named<Tensor> out;
  visit("", [&](const Module& m, const std::string& p) {
    for (const auto& [n, t] : m.parameters_) out.emplace_back(p + n, t);
  });
  return out;
}

Named<Tensor> Module::namedBuffers() const {
  Named<Tensor> out;
  visit("", [&](const Module& m, const std::string& p) {
    for (const auto& [n, t] : m.buffers_) out.emplace_back(p + n, t);
  });
  return out;
}

Named<formats::QuantPointPtr> Module::namedQuantPoints() const {
  Named<formats::QuantPointPtr> out;
  visit("", [&](const Module& m, const std::string& p) {
    for (const auto& [n, q] : m.quantPoints_) out.emplace_back(p + n, q);
  });
  return out;
}

Named<std::shared_ptr<Module>> Module::namedModules() const {
  // Pre-order, depth first (PyTorch's named_modules order): a module, then its whole subtree,
  // then its next sibling. `first`/`last` selectors rely on it.
  Named<std::shared_ptr<Module>> out;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> stack(children_.rbegin(),
                                                                      children_.rend());
  while (!stack.empty()) {
    auto [name, m] = std::move(stack.back());
    stack.pop_back();
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it) {
      stack.emplace_back(name + "." + it->first, it->second);
    }
    out.emplace_back(std::move(name), std::move(m));
  }
  return out;
}

Named<std::shared_ptr<Module>> Module::namedChildren() const { return children_; }

Named<MasterFormat> Module::namedMasterFormats() const {
  Named<MasterFormat> out;
  visit("", [&](const Module& m, const std::string& p) {
    for (auto& [n, f] : m.ownMasterFormats()) out.emplace_back(p + n, f);
  });
  return out;
}

int64_t Module::numParameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : namedParameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  visit("", [&](const Module& m, const std::string&) { const_cast<Module&>(m).training_ = on; });
}

void Module::zeroGrad() {
  for (auto& [n, t] : namedParameters()) {
    Tensor h = t;
    h.zeroGrad();
  }
}

Named<std::shared_ptr<Module>> Module::dotProductLayers() const {
  Named<std::shared_ptr<Module>> out;
  if (isDotProduct()) out.emplace_back("", nullptr);
  for (auto& [n, m] : namedModules()) {
    if (m->isDotProduct()) out.emplace_back(n, m);
  }
  return out;
}

void Module::nameQuantPoints() const {
  for (auto& [n, q] : namedQuantPoints()) q->setName(n);
}

void Module::setPolicy(const FormatPolicy& policy) {
  nameQuantPoints();
  if (isDotProduct()) applyPolicy(policy);
  for (auto& [n, m] : namedModules()) {
    if (m->isDotProduct()) m->applyPolicy(policy);
  }
}

void Module::setPolicy(std::string_view selector, const FormatPolicy& policy) {
  nameQuantPoints();
  auto layers = dotProductLayers();
  int64_t count = static_cast<int64_t>(layers.size()), matched = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto& [name, m] = layers[i];
    if (!formats::matchesSelector(selector, name, i, count)) continue;
    (m ? *m : *this).applyPolicy(policy);
    ++matched;
  }
  MANTISSA_CHECK(matched > 0, typeName_, ".setPolicy: selector '", selector,
                 "' matches no dot-product layer");
}

void Module::applySchedule(const formats::PrecisionSchedule& schedule, int64_t epoch,
                           int64_t numEpochs) {
  nameQuantPoints();
  auto layers = dotProductLayers();
  int64_t count = static_cast<int64_t>(layers.size());
  for (int64_t i = 0; i < count; ++i) {
    auto& [name, m] = layers[i];
    (m ? *m : *this).applyPolicy(schedule.policyFor(name, i, count, epoch, numEpochs));
  }
}

void Module::setQuantSeed(uint64_t seed) {
  nameQuantPoints();
  for (auto& [n, q] : namedQuantPoints()) q->setSeed(seed);
}

std::string Module::describePrecision() const {
  std::ostringstream os;
  for (auto& [n, q] : namedQuantPoints()) {
    os << n << "  fwd=" << q->forwardFormat()->spec() << "  bwd=" << q->backwardFormat()->spec()
       << '\n';
  }
  for (auto& [n, f] : namedMasterFormats()) {
    os << n << ".master  " << (f.format ? f.format->spec() : std::string("fp32")) << '\n';
  }
  return os.str();
}

void Module::saveState(io::StateDict& out, const std::string& prefix) const {
  for (auto& [n, t] : namedParameters()) out.tensors[prefix + "model/" + n] = t.detach().clone();
  for (auto& [n, t] : namedBuffers()) out.tensors[prefix + "buffers/" + n] = t.detach().clone();
  for (auto& [n, q] : namedQuantPoints()) q->saveState(out, prefix + "quant/" + n + "/");
}

void Module::loadState(const io::StateDict& in, const std::string& prefix) {
  std::set<std::string> expected;
  auto loadList = [&](const Named<Tensor>& list, const std::string& group) {
    for (auto& [n, t] : list) {
      std::string key = prefix + group + n;
      expected.insert(key);
      auto it = in.tensors.find(key);
      MANTISSA_CHECK(it != in.tensors.end(), "missing '", key, "' (", typeName_, " expects it)");
      MANTISSA_CHECK(it->second.shape() == t.shape(), "'", key, "': shape ",
                     toString(it->second.shape()), " does not match the model's ",
                     toString(t.shape()));
    }
  };
  Named<Tensor> params = namedParameters(), buffers = namedBuffers();
  loadList(params, "model/");
  loadList(buffers, "buffers/");
  for (const auto& [key, t] : in.tensors) {
    bool inGroup = key.rfind(prefix + "model/", 0) == 0 || key.rfind(prefix + "buffers/", 0) == 0;
    MANTISSA_CHECK(!inGroup || expected.count(key), "unexpected '", key, "': the ", typeName_,
                   " model has no such parameter or buffer (checkpoint of another model?)");
  }
  // All checks passed: now copy (a failed load leaves the model untouched).
  autograd::NoGradGuard guard;
  for (auto* list : {&params, &buffers}) {
    const std::string group = list == &params ? "model/" : "buffers/";
    for (auto& [n, t] : *list) {
      Tensor dst = t.detach();
      ops::detail::copyStrided(in.tensors.at(prefix + group + n).contiguous().to(t.dtype()), dst);
    }
  }
  for (auto& [n, q] : namedQuantPoints()) q->loadState(in, prefix + "quant/" + n + "/");
}

std::string Module::describe() const {
  std::ostringstream os;
  struct Item {
    const Module* m;
    std::string name;
    int depth;
    bool close;
  };
  // Iterative so deep models print without recursion.
  std::vector<Item> stack{{this, "", 0, false}};
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    std::string pad(static_cast<size_t>(it.depth) * 2, ' ');
    if (it.close) {
      os << pad << ")\n";
      continue;
    }
    os << pad << (it.name.empty() ? "" : "(" + it.name + "): ") << it.m->typeName_ << '('
       << it.m->extraRepr();
    if (it.m->children_.empty()) {
      os << ")\n";
      continue;
    }
    os << '\n';
    stack.push_back({it.m, "", it.depth, true});
    for (auto c = it.m->children_.rbegin(); c != it.m->children_.rend(); ++c) {
      stack.push_back({c->second.get(), c->first, it.depth + 1, false});
    }
  }
  return os.str();
}

}  // namespace mantissa::nn
