#include "apps/cli/PostTraining.h"

#include <cmath>
#include <limits>

#include "apps/cli/CommonOptions.h"
#include "core/autograd/Autograd.h"
#include "formats/Ffp8.h"
#include "formats/Policy.h"
#include "layers/DotProduct.h"

namespace mantissa::cli {

struct PostTrainingQuantizer::Measure {
  double sumSq = 0;
  int64_t count = 0;
};

namespace {

using formats::Encoded;
using formats::FormatPtr;
using formats::FormatState;
using formats::QuantizeArgs;

/// The identity, keeping a copy of what it sees (the calibration pass): each point's inputs
/// by name, and only the first tensor for weights (which do not change in inference).
class RecordingFormat final : public formats::Format {
 public:
  using Store = std::map<std::string, std::vector<Tensor>>;
  RecordingFormat(std::shared_ptr<Store> store, bool firstOnly)
      : store_(std::move(store)), firstOnly_(firstOnly), fp32_(formats::parse("fp32")) {}
  std::string spec() const override { return firstOnly_ ? "record:first" : "record:all"; }
  double bitsPerValue(const Shape& s, int64_t a = -1) const override {
    return fp32_->bitsPerValue(s, a);
  }
  Tensor quantize(const Tensor& x, const QuantizeArgs& args, FormatState*) const override {
    auto& v = (*store_)[std::string(args.pointName)];
    if (x.numel() > 0 && (!firstOnly_ || v.empty())) v.push_back(x.contiguous().clone());
    return x;
  }
  Encoded encode(const Tensor& x, const QuantizeArgs& args, FormatState* s) const override {
    return fp32_->encode(quantize(x, args, s), args);
  }
  Tensor decode(const Encoded& e) const override { return fp32_->decode(e); }

 private:
  std::shared_ptr<Store> store_;
  bool firstOnly_;
  FormatPtr fp32_;
};

/// Another format that also sums the squared error of everything it quantizes.
class MeasuringFormat final : public formats::Format {
 public:
  MeasuringFormat(FormatPtr inner, std::shared_ptr<PostTrainingQuantizer::Measure> m)
      : inner_(std::move(inner)), m_(std::move(m)) {}
  std::string spec() const override { return inner_->spec(); }
  double bitsPerValue(const Shape& s, int64_t a = -1) const override {
    return inner_->bitsPerValue(s, a);
  }
  bool isBlocked() const override { return inner_->isBlocked(); }
  std::unique_ptr<FormatState> makeState() const override { return inner_->makeState(); }
  Tensor quantize(const Tensor& x, const QuantizeArgs& args, FormatState* s) const override {
    Tensor q = inner_->quantize(x, args, s);
    Tensor xc = x.contiguous(), qc = q.contiguous();
    const float* a = xc.data<float>();
    const float* b = qc.data<float>();
    double sum = 0;
    for (int64_t i = 0; i < xc.numel(); ++i) sum += std::pow(static_cast<double>(b[i]) - a[i], 2);
    m_->sumSq += sum;
    m_->count += xc.numel();
    return q;
  }
  Encoded encode(const Tensor& x, const QuantizeArgs& args, FormatState* s) const override {
    return inner_->encode(x, args, s);
  }
  Tensor decode(const Encoded& e) const override { return inner_->decode(e); }

 private:
  FormatPtr inner_;
  std::shared_ptr<PostTrainingQuantizer::Measure> m_;
};

/// The dot-product layers in depth-first registration order (conv1, layer1.0.conv1, ..., fc:
/// the order of the forward pass for the bundled models), with their dotted names.
std::vector<std::pair<std::string, nn::DotProductLayer*>> dotLayers(nn::Module& model) {
  std::vector<std::pair<std::string, nn::DotProductLayer*>> out;
  std::vector<std::pair<std::string, nn::Module*>> stack{{"", &model}};
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    if (m->isDotProduct()) {
      auto* layer = dynamic_cast<nn::DotProductLayer*>(m);
      MANTISSA_CHECK(layer != nullptr, "mantissa-ptq: dot-product layer '", name,
                     "' is not a DotProductLayer");
      out.emplace_back(name, layer);
    }
    auto children = m->namedChildren();
    for (auto it = children.rbegin(); it != children.rend(); ++it) {
      stack.emplace_back(name.empty() ? it->first : name + "." + it->first, it->second.get());
    }
  }
  return out;
}

}  // namespace

PostTrainingQuantizer::PostTrainingQuantizer(nn::Module& model, std::string format)
    : model_(model), format_(std::move(format)) {
  auto_ = format_ == "ffp8:auto";
  if (!auto_) {
    try {
      fixed_ = formats::parse(format_);
    } catch (const Error& e) {
      throw UsageError("--format '" + format_ + "': " + e.what());
    }
  }
  for (auto& [name, layer] : dotLayers(model_)) {
    names_.push_back(name);
    choices_[name] = {.weight = fixed_, .activation = fixed_};
  }
  MANTISSA_CHECK(!names_.empty(), "mantissa-ptq: the model has no dot-product layers");
}

PostTrainingQuantizer::~PostTrainingQuantizer() = default;

int64_t PostTrainingQuantizer::calibrate(data::DataLoader& loader, int64_t batches) {
  MANTISSA_CHECK(batches >= 1, "--calib-batches must be at least 1, got ", batches);
  auto weights = std::make_shared<RecordingFormat::Store>();
  auto inputs = std::make_shared<RecordingFormat::Store>();
  formats::FormatPolicy record = formats::FormatPolicy::fp32();
  record.weight = std::make_shared<RecordingFormat>(weights, true);
  record.activation = std::make_shared<RecordingFormat>(inputs, false);
  model_.setPolicy(record);
  model_.eval();
  int64_t images = 0;
  {
    autograd::NoGradGuard noGrad;
    for (const data::Batch& b : loader.epoch(0)) {
      if (b.index >= batches) break;
      model_.forward(b.data);
      images += b.data.size(0);
    }
  }
  model_.setPolicy(formats::FormatPolicy::fp32());
  // FORMATS.md A.4: weights and inputs of each layer calibrated separately, over everything
  // recorded (the bias covering the maximum depends on all calibration batches).
  for (auto& [name, layer] : dotLayers(model_)) {
    Choice& c = choices_[name];
    auto w = weights->find(layer->weightPoint()->name());
    auto a = inputs->find(layer->activationPoint()->name());
    FormatPtr fp32 = formats::parse("fp32");
    if (w == weights->end() || a == inputs->end()) {
      c = {.weight = fp32, .activation = fp32};  // never reached by the calibration batches
      continue;
    }
    formats::Ffp8Calibration cw = formats::calibrateFfp8(w->second);
    formats::Ffp8Calibration ca = formats::calibrateFfp8(a->second);
    c.weight = std::make_shared<formats::Ffp8>(cw.best);
    c.activation = std::make_shared<formats::Ffp8>(ca.best);
    c.nonNegative = ca.nonNegative;
  }
  return images;
}

void PostTrainingQuantizer::apply() {
  weightMeasures_.clear();
  activationMeasures_.clear();
  for (auto& [name, layer] : dotLayers(model_)) {
    const Choice& c = choices_.at(name);
    MANTISSA_CHECK(c.weight && c.activation,
                   "mantissa-ptq: ffp8:auto needs calibrate() before apply()");
    auto wm = std::make_shared<Measure>(), am = std::make_shared<Measure>();
    weightMeasures_[name] = wm;
    activationMeasures_[name] = am;
    formats::FormatPolicy p = formats::FormatPolicy::fp32();
    p.weight = std::make_shared<MeasuringFormat>(c.weight, wm);
    p.activation = std::make_shared<MeasuringFormat>(c.activation, am);
    if (name.empty()) {
      model_.setPolicy(p);
    } else {
      model_.setPolicy(name, p);
    }
  }
}

std::vector<PtqLayer> PostTrainingQuantizer::layers() const {
  std::vector<PtqLayer> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::string& name : names_) {
    const Choice& c = choices_.at(name);
    PtqLayer l;
    l.layer = name;
    l.weightFormat = c.weight ? c.weight->spec() : format_;
    l.activationFormat = c.activation ? c.activation->spec() : format_;
    l.activationNonNegative = c.nonNegative;
    auto mse = [&](const std::map<std::string, std::shared_ptr<Measure>>& m, int64_t* count) {
      auto it = m.find(name);
      if (count) *count = it == m.end() ? 0 : it->second->count;
      return it == m.end() || it->second->count == 0 ? nan : it->second->sumSq / it->second->count;
    };
    l.weightMse = mse(weightMeasures_, nullptr);
    l.activationMse = mse(activationMeasures_, &l.activationValues);
    out.push_back(l);
  }
  return out;
}

}  // namespace mantissa::cli
