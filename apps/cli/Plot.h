#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mantissa::cli {

/// One line of a chart: points (x[i], y[i]) joined in order. Non-finite points are left out.
struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
};

/// A line chart: several series on shared axes, with ticks, grid, axis labels and a legend.
struct PlotSpec {
  std::string title, xLabel, yLabel;
  std::vector<PlotSeries> series;
  int width = 900, height = 520;
  /// Ticks on the x axis at whole numbers only (epochs, steps).
  bool integerX = true;
};

/// The chart as a standalone SVG 1.1 document. Each series is one
/// `<path class="series" ...>` (with a `<title>` holding its label), in order.
std::string renderSvg(const PlotSpec& spec);

/// The same chart rasterised into 8-bit RGB pixels (row-major, width * height * 3), with
/// anti-aliased lines and stb_easy_font text.
std::vector<uint8_t> renderRgb(const PlotSpec& spec);

/// Writes `path` as SVG (.svg) or PNG (.png), chosen by the extension; creates the parent
/// directory. Errors name the file (another extension, a file that cannot be written).
void writePlot(const PlotSpec& spec, const std::string& path);

/// "Nice" tick positions covering [lo, hi]: about `target` multiples of 1, 2 or 5 x 10^k
/// (whole numbers only when `integer`).
std::vector<double> niceTicks(double lo, double hi, int target, bool integer);

}  // namespace mantissa::cli
