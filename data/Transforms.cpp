#include "data/Transforms.h"

#include <algorithm>
#include <cstring>

#include "core/Error.h"
#include "core/Rng.h"
#include "data/detail/ImageOps.h"

namespace mantissa::data {

namespace {
/// The input as a contiguous F32 CHW tensor; errors name the transform.
Tensor checkedImage(const Tensor& image, const char* what) {
  MANTISSA_CHECK(image.defined(), what, ": undefined image");
  MANTISSA_CHECK(image.dtype() == DType::F32, what, ": expected an f32 image, got ",
                 dtypeName(image.dtype()));
  MANTISSA_CHECK(image.dim() == 3, what, ": expected a CHW image, got shape ",
                 toString(image.shape()));
  return image.contiguous();
}
}  // namespace

Compose::Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {
  for (size_t i = 0; i < transforms_.size(); ++i) {
    MANTISSA_CHECK(static_cast<bool>(transforms_[i]), "Compose: transform ", i, " is empty");
  }
}

Tensor Compose::operator()(const Tensor& image, Rng& rng) const {
  Tensor x = image;
  for (const Transform& t : transforms_) x = t(x, rng);
  return x;
}

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)) {
  MANTISSA_CHECK(!mean_.empty() && mean_.size() == std.size(), "Normalize: ", mean_.size(),
                 " means and ", std.size(), " standard deviations (need the same, >= 1)");
  for (size_t c = 0; c < std.size(); ++c) {
    MANTISSA_CHECK(std[c] > 0, "Normalize: std[", c, "] = ", std[c], " must be > 0");
    invStd_.push_back(1.f / std[c]);
  }
}

Tensor Normalize::operator()(const Tensor& image, Rng&) const {
  Tensor x = checkedImage(image, "Normalize");
  const int64_t channels = x.size(0), plane = x.size(1) * x.size(2);
  MANTISSA_CHECK(mean_.size() == 1 || static_cast<int64_t>(mean_.size()) == channels,
                 "Normalize: ", mean_.size(), " means for an image with ", channels, " channels");
  Tensor out = Tensor::empty(x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const size_t k = mean_.size() == 1 ? 0 : static_cast<size_t>(c);
    // Multiplying by the reciprocal (instead of dividing) keeps the loop vectorised; the
    // difference is at most one rounding.
    const float m = mean_[k], s = invStd_[k];
    for (int64_t i = 0; i < plane; ++i) dst[c * plane + i] = (src[c * plane + i] - m) * s;
  }
  return out;
}

RandomCrop::RandomCrop(int64_t size, int64_t padding, float fill)
    : height_(size), width_(size), padding_(padding), fill_(fill) {
  validate();
}

RandomCrop RandomCrop::rect(int64_t height, int64_t width, int64_t padding, float fill) {
  RandomCrop crop(height, padding, fill);
  crop.width_ = width;
  crop.validate();
  return crop;
}

void RandomCrop::validate() const {
  MANTISSA_CHECK(height_ >= 1 && width_ >= 1 && padding_ >= 0, "RandomCrop: size ", height_, "x",
                 width_, " and padding ", padding_, " must be positive and non-negative");
}

Tensor RandomCrop::operator()(const Tensor& image, Rng& rng) const {
  Tensor x = checkedImage(image, "RandomCrop");
  const int64_t channels = x.size(0), h = x.size(1), w = x.size(2);
  const int64_t paddedH = h + 2 * padding_, paddedW = w + 2 * padding_;
  MANTISSA_CHECK(height_ <= paddedH && width_ <= paddedW, "RandomCrop: crop ", height_, "x", width_,
                 " is larger than the padded image ", paddedH, "x", paddedW);
  // Offsets of the window inside the padded image, then in source coordinates.
  const int64_t top =
      static_cast<int64_t>(rng.uniformInt(static_cast<uint64_t>(paddedH - height_ + 1)));
  const int64_t left =
      static_cast<int64_t>(rng.uniformInt(static_cast<uint64_t>(paddedW - width_ + 1)));
  const int64_t y0 = top - padding_, x0 = left - padding_;
  // Columns of the window that fall inside the source: [xb, xe) in window coordinates.
  const int64_t xb = std::clamp<int64_t>(-x0, 0, width_);
  const int64_t xe = std::clamp<int64_t>(w - x0, xb, width_);
  Tensor out = Tensor::empty({channels, height_, width_});
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t y = 0; y < height_; ++y) {
      float* row = dst + (c * height_ + y) * width_;
      const int64_t sy = y0 + y;
      if (sy < 0 || sy >= h) {
        std::fill(row, row + width_, fill_);
        continue;
      }
      std::fill(row, row + xb, fill_);
      std::memcpy(row + xb, src + (c * h + sy) * w + x0 + xb,
                  static_cast<size_t>(xe - xb) * sizeof(float));
      std::fill(row + xe, row + width_, fill_);
    }
  }
  return out;
}

RandomHorizontalFlip::RandomHorizontalFlip(float p) : p_(p) {
  MANTISSA_CHECK(p >= 0.f && p <= 1.f, "RandomHorizontalFlip: probability ", p, " outside [0, 1]");
}

Tensor RandomHorizontalFlip::operator()(const Tensor& image, Rng& rng) const {
  Tensor x = checkedImage(image, "RandomHorizontalFlip");
  // Always draw, so the number of draws does not depend on the outcome.
  if (!(rng.uniform() < p_)) return x;
  const int64_t rows = x.size(0) * x.size(1), w = x.size(2);
  Tensor out = Tensor::empty(x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    std::reverse_copy(src + r * w, src + (r + 1) * w, dst + r * w);
  }
  return out;
}

Resize::Resize(int64_t height, int64_t width) : height_(height), width_(width) {
  MANTISSA_CHECK(height >= 1 && width >= 1, "Resize: size ", height, "x", width,
                 " must be positive");
}

Tensor Resize::operator()(const Tensor& image, Rng&) const {
  Tensor x = checkedImage(image, "Resize");
  Tensor out = Tensor::empty({x.size(0), height_, width_});
  detail::resizeBilinear(x.data<float>(), x.size(0), x.size(1), x.size(2), out.data<float>(),
                         height_, width_);
  return out;
}

Tensor GreyToRgb::operator()(const Tensor& image, Rng&) const {
  Tensor x = checkedImage(image, "GreyToRgb");
  MANTISSA_CHECK(x.size(0) == 1, "GreyToRgb: expected one channel, got shape ",
                 toString(x.shape()));
  const int64_t plane = x.size(1) * x.size(2);
  Tensor out = Tensor::empty({3, x.size(1), x.size(2)});
  for (int64_t c = 0; c < 3; ++c)
    std::copy_n(x.data<float>(), plane, out.data<float>() + c * plane);
  return out;
}

}  // namespace mantissa::data
