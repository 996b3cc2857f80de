#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/DataLoader.h"
#include "formats/Format.h"
#include "layers/Module.h"

namespace mantissa::cli {

/// The inference formats of one dot-product layer and the error they cause.
struct PtqLayer {
  std::string layer;                           // dotted name, "layer1.0.conv1"
  std::string weightFormat, activationFormat;  // specs of the formats in force
  /// ffp8:auto: every calibration input was >= 0 (post-ReLU), so the sign bit was dropped.
  bool activationNonNegative = false;
  /// Mean squared quantization error of the weight and of the layer inputs, over every value
  /// quantized since apply() (the test-set evaluation); NaN before any.
  double weightMse = 0, activationMse = 0;
  int64_t activationValues = 0;
};

/// Post-training quantization for inference (FORMATS.md A.4): the weight and the input
/// activation of every dot-product layer in a low-precision format, all other roles FP32.
/// With "ffp8:auto" the FFP8 configuration (s, e, f, bias) of each layer's weight and of its
/// inputs are chosen separately by calibrateFfp8 over a few calibration batches; any other
/// spec ("e4m3", "ffp8:e=4,f=3,b=7,s=1", "hbfp8", ...) is used for every layer as given.
///   PostTrainingQuantizer ptq(model, "ffp8:auto");
///   ptq.calibrate(trainLoader, 4);
///   ptq.apply();
///   evaluateClassifier(model, testLoader);   // in the chosen formats
///   for (auto& l : ptq.layers()) ...         // choices and measured MSEs
class PostTrainingQuantizer {
 public:
  /// Throws naming --format when `format` is neither ffp8:auto nor a known spec.
  PostTrainingQuantizer(nn::Module& model, std::string format);
  ~PostTrainingQuantizer();

  bool needsCalibration() const { return auto_; }
  /// ffp8:auto: runs `batches` batches of `loader` (epoch 0) through the model in FP32, eval
  /// mode, recording each layer's weight and inputs, and chooses the formats. Layers the
  /// batches never reach keep FP32. Returns the number of images seen.
  int64_t calibrate(data::DataLoader& loader, int64_t batches);
  /// Sets every dot-product layer's policy to its chosen weight/activation formats (wrapped so
  /// that the quantization error is measured) and FP32 for the other roles.
  void apply();
  /// One entry per dot-product layer, in registration order.
  std::vector<PtqLayer> layers() const;

  struct Measure;  // running squared-error sums of one quantization point

 private:
  nn::Module& model_;
  std::string format_;
  bool auto_ = false;
  formats::FormatPtr fixed_;
  struct Choice {
    formats::FormatPtr weight, activation;
    bool nonNegative = false;
  };
  std::vector<std::string> names_;
  std::map<std::string, Choice> choices_;
  std::map<std::string, std::shared_ptr<Measure>> weightMeasures_, activationMeasures_;
};

}  // namespace mantissa::cli
