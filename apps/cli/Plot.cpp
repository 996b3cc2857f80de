#include "apps/cli/Plot.h"

// stb_easy_font is a header of static functions, not all of them used here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/Error.h"

namespace mantissa::cli {

namespace {

using Rgb = std::array<uint8_t, 3>;

// matplotlib's tab10: distinguishable, and familiar from the papers' plots.
constexpr std::array<Rgb, 10> kPalette = {{{31, 119, 180},
                                           {255, 127, 14},
                                           {44, 160, 44},
                                           {214, 39, 40},
                                           {148, 103, 189},
                                           {140, 86, 75},
                                           {227, 119, 194},
                                           {127, 127, 127},
                                           {188, 189, 34},
                                           {23, 190, 207}}};
constexpr Rgb kBlack = {0, 0, 0}, kGrid = {225, 225, 225}, kAxis = {60, 60, 60};
constexpr double kCharWidth = 0.6;  // average advance of a sans-serif character per font size

enum class Anchor { Start, Middle, End };

/// What the two renderers draw on. Coordinates are pixels, y down.
class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void line(double x0, double y0, double x1, double y1, Rgb c, double width) = 0;
  virtual void series(const std::vector<std::pair<double, double>>& pts, Rgb c, double width,
                      const std::string& label) = 0;
  virtual void marker(double x, double y, double r, Rgb c) = 0;
  /// `y` is the baseline; vertical text runs bottom to top with its baseline at x.
  virtual void text(double x, double y, const std::string& s, double size, Anchor a, Rgb c,
                    bool vertical = false) = 0;
};

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

std::string xmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

class SvgCanvas final : public Canvas {
 public:
  SvgCanvas(int w, int h) {
    os_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << w
        << "\" height=\"" << h << "\" viewBox=\"0 0 " << w << ' ' << h
        << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        << "<rect x=\"0\" y=\"0\" width=\"" << w << "\" height=\"" << h
        << "\" fill=\"#ffffff\"/>\n";
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, double width) override {
    os_ << "<line x1=\"" << num(x0) << "\" y1=\"" << num(y0) << "\" x2=\"" << num(x1) << "\" y2=\""
        << num(y1) << "\" stroke=\"" << hex(c) << "\" stroke-width=\"" << width << "\"/>\n";
  }
  void series(const std::vector<std::pair<double, double>>& pts, Rgb c, double width,
              const std::string& label) override {
    os_ << "<path class=\"series\" fill=\"none\" stroke=\"" << hex(c) << "\" stroke-width=\""
        << width << "\" stroke-linejoin=\"round\" stroke-linecap=\"round\" d=\"";
    for (size_t i = 0; i < pts.size(); ++i) {
      os_ << (i ? " L" : "M") << num(pts[i].first) << ' ' << num(pts[i].second);
    }
    // A single point still shows as a dot (a zero-length segment with round caps).
    if (pts.size() == 1) os_ << " L" << num(pts[0].first) << ' ' << num(pts[0].second);
    os_ << "\"><title>" << xmlEscape(label) << "</title></path>\n";
  }
  void marker(double x, double y, double r, Rgb c) override {
    os_ << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"" << r << "\" fill=\""
        << hex(c) << "\"/>\n";
  }
  void text(double x, double y, const std::string& s, double size, Anchor a, Rgb c,
            bool vertical) override {
    const char* anchor = a == Anchor::Start ? "start" : a == Anchor::Middle ? "middle" : "end";
    os_ << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" font-size=\"" << size
        << "\" text-anchor=\"" << anchor << "\" fill=\"" << hex(c) << '"';
    if (vertical) os_ << " transform=\"rotate(-90 " << num(x) << ' ' << num(y) << ")\"";
    os_ << '>' << xmlEscape(s) << "</text>\n";
  }
  std::string finish() {
    os_ << "</svg>\n";
    return os_.str();
  }

 private:
  std::ostringstream os_;
};

/// Pixels with coverage-based anti-aliasing: lines by distance to the segment, text from
/// stb_easy_font's rectangles by area overlap.
class RasterCanvas final : public Canvas {
 public:
  RasterCanvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3, 255) {}

  void line(double x0, double y0, double x1, double y1, Rgb c, double width) override {
    std::vector<float> cov(static_cast<size_t>(w_) * h_, 0.f);
    segment(cov, x0, y0, x1, y1, width);
    blend(cov, c);
  }
  void series(const std::vector<std::pair<double, double>>& pts, Rgb c, double width,
              const std::string&) override {
    // One coverage buffer per series (max over segments), so joints are not drawn twice.
    std::vector<float> cov(static_cast<size_t>(w_) * h_, 0.f);
    for (size_t i = 0; i < pts.size(); ++i) {
      const auto& a = pts[i];
      const auto& b = i + 1 < pts.size() ? pts[i + 1] : pts[i];
      segment(cov, a.first, a.second, b.first, b.second, width);
    }
    blend(cov, c);
  }
  void marker(double x, double y, double r, Rgb c) override {
    std::vector<float> cov(static_cast<size_t>(w_) * h_, 0.f);
    segment(cov, x, y, x, y, 2 * r);
    blend(cov, c);
  }
  void text(double x, double y, const std::string& s, double size, Anchor a, Rgb c,
            bool vertical) override {
    if (s.empty()) return;
    std::string t = s;
    for (char& ch : t) {
      if (static_cast<unsigned char>(ch) >= 127 || ch < 32) ch = '?';  // the font is ASCII
    }
    const double scale = size / 10.0;  // the font's capitals are 7 units high
    const double width = (stb_easy_font_width(t.data()) - 1) * scale;
    const double shift = a == Anchor::Start ? 0 : a == Anchor::Middle ? width / 2 : width;
    std::vector<char> buf(t.size() * 300 + 1024);
    int quads =
        stb_easy_font_print(0, 0, t.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
    std::vector<float> cov(static_cast<size_t>(w_) * h_, 0.f);
    for (int q = 0; q < quads; ++q) {
      double qx0 = 1e9, qy0 = 1e9, qx1 = -1e9, qy1 = -1e9;
      for (int v = 0; v < 4; ++v) {
        const float* p = reinterpret_cast<const float*>(buf.data() + (q * 4 + v) * 16);
        qx0 = std::min<double>(qx0, p[0]);
        qx1 = std::max<double>(qx1, p[0]);
        qy0 = std::min<double>(qy0, p[1]);
        qy1 = std::max<double>(qy1, p[1]);
      }
      // Font units: x along the text, y down with the baseline at 7.
      double u0 = qx0 * scale - shift, u1 = qx1 * scale - shift;
      double v0 = (qy0 - 7) * scale, v1 = (qy1 - 7) * scale;
      if (vertical) {
        fillRect(cov, x + v0, y - u1, x + v1, y - u0);
      } else {
        fillRect(cov, x + u0, y + v0, x + u1, y + v1);
      }
    }
    blend(cov, c);
  }
  std::vector<uint8_t> pixels() const { return px_; }

 private:
  void segment(std::vector<float>& cov, double x0, double y0, double x1, double y1, double width) {
    const double r = width / 2;
    int bx0 = std::max(0, static_cast<int>(std::floor(std::min(x0, x1) - r - 1)));
    int bx1 = std::min(w_ - 1, static_cast<int>(std::ceil(std::max(x0, x1) + r + 1)));
    int by0 = std::max(0, static_cast<int>(std::floor(std::min(y0, y1) - r - 1)));
    int by1 = std::min(h_ - 1, static_cast<int>(std::ceil(std::max(y0, y1) + r + 1)));
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int py = by0; py <= by1; ++py) {
      for (int px = bx0; px <= bx1; ++px) {
        double cx = px + 0.5, cy = py + 0.5;
        double t = len2 > 0 ? std::clamp(((cx - x0) * dx + (cy - y0) * dy) / len2, 0.0, 1.0) : 0.0;
        double d = std::hypot(cx - (x0 + t * dx), cy - (y0 + t * dy));
        // A pixel-wide ramp at the edge; lines thinner than a pixel fade instead of vanishing.
        double c = std::clamp(r + 0.5 - d, 0.0, 1.0) * std::min(1.0, width);
        float& dst = cov[static_cast<size_t>(py) * w_ + px];
        dst = std::max(dst, static_cast<float>(c));
      }
    }
  }
  void fillRect(std::vector<float>& cov, double x0, double y0, double x1, double y1) {
    int bx0 = std::max(0, static_cast<int>(std::floor(x0)));
    int bx1 = std::min(w_ - 1, static_cast<int>(std::ceil(x1)) - 1);
    int by0 = std::max(0, static_cast<int>(std::floor(y0)));
    int by1 = std::min(h_ - 1, static_cast<int>(std::ceil(y1)) - 1);
    for (int py = by0; py <= by1; ++py) {
      double oy = std::min<double>(py + 1, y1) - std::max<double>(py, y0);
      for (int px = bx0; px <= bx1; ++px) {
        double ox = std::min<double>(px + 1, x1) - std::max<double>(px, x0);
        float& dst = cov[static_cast<size_t>(py) * w_ + px];
        dst = std::min(1.f, dst + static_cast<float>(std::max(0.0, ox) * std::max(0.0, oy)));
      }
    }
  }
  void blend(const std::vector<float>& cov, Rgb c) {
    for (size_t i = 0; i < cov.size(); ++i) {
      if (cov[i] <= 0.f) continue;
      for (int k = 0; k < 3; ++k) {
        uint8_t& p = px_[i * 3 + k];
        p = static_cast<uint8_t>(std::lround(p + (c[k] - p) * cov[i]));
      }
    }
  }

  int w_, h_;
  std::vector<uint8_t> px_;
};

std::string tickLabel(double v, double step) {
  char buf[48];
  if (std::fabs(v) < step * 1e-9) v = 0;  // -0 and rounding residue at zero
  if (std::fabs(v) >= 1e7 || (step < 1e-6 && v != 0)) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

std::string shorten(const std::string& s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max - 3) + "...";
}

void draw(const PlotSpec& spec, Canvas& c) {
  const double w = spec.width, h = spec.height;
  // Data ranges over finite points.
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const PlotSeries& s : spec.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmin == xmax) xmin -= 1, xmax += 1;
  if (ymin == ymax) {
    double pad = ymin != 0 ? std::fabs(ymin) * 0.05 : 1.0;
    ymin -= pad, ymax += pad;
  }
  std::vector<double> yt = niceTicks(ymin, ymax, 6, false);
  double ystep = yt.size() > 1 ? yt[1] - yt[0] : (ymax - ymin);
  ymin = std::min(ymin, std::floor(ymin / ystep + 1e-9) * ystep);
  ymax = std::max(ymax, std::ceil(ymax / ystep - 1e-9) * ystep);
  yt = niceTicks(ymin, ymax, 6, false);
  std::vector<double> xt = niceTicks(xmin, xmax, 8, spec.integerX);
  double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;

  // Layout: title on top, y labels left, legend right.
  const double font = 13, titleFont = 16;
  size_t labelChars = 0;
  for (const PlotSeries& s : spec.series) labelChars = std::max(labelChars, s.label.size());
  labelChars = std::min<size_t>(labelChars, 40);
  double legendW = spec.series.empty() ? 0 : 40 + labelChars * font * kCharWidth;
  size_t yLabelChars = 0;
  for (double v : yt) yLabelChars = std::max(yLabelChars, tickLabel(v, ystep).size());
  const double left = 34 + yLabelChars * font * kCharWidth, right = legendW + 20;
  const double top = spec.title.empty() ? 20 : 44, bottom = 52;
  const double pw = std::max(10.0, w - left - right), ph = std::max(10.0, h - top - bottom);
  auto X = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return top + (ymax - y) / (ymax - ymin) * ph; };

  for (double v : yt) {
    c.line(left, Y(v), left + pw, Y(v), kGrid, 1);
    c.text(left - 6, Y(v) + font * 0.35, tickLabel(v, ystep), font, Anchor::End, kAxis);
  }
  for (double v : xt) {
    c.line(X(v), top, X(v), top + ph, kGrid, 1);
    c.text(X(v), top + ph + font + 6, tickLabel(v, xstep), font, Anchor::Middle, kAxis);
  }
  c.line(left, top + ph, left + pw, top + ph, kAxis, 1);
  c.line(left, top, left, top + ph, kAxis, 1);
  if (!spec.title.empty()) c.text(left + pw / 2, 28, spec.title, titleFont, Anchor::Middle, kBlack);
  c.text(left + pw / 2, h - 12, spec.xLabel, font, Anchor::Middle, kBlack);
  c.text(16, top + ph / 2, spec.yLabel, font, Anchor::Middle, kBlack, true);

  for (size_t k = 0; k < spec.series.size(); ++k) {
    const PlotSeries& s = spec.series[k];
    Rgb color = kPalette[k % kPalette.size()];
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) pts.emplace_back(X(s.x[i]), Y(s.y[i]));
    }
    c.series(pts, color, 2, s.label);
    // Markers on short series, where single epochs matter.
    if (pts.size() <= 30) {
      for (auto& [px, py] : pts) c.marker(px, py, 3, color);
    }
    double ly = top + 10 + k * (font + 8);
    double lx = left + pw + 16;
    c.line(lx, ly, lx + 22, ly, color, 3);
    c.text(lx + 28, ly + font * 0.35, shorten(s.label, 40), font, Anchor::Start, kBlack);
  }
}

}  // namespace

std::vector<double> niceTicks(double lo, double hi, int target, bool integer) {
  std::vector<double> out;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) return out;
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    out.push_back(k * step);
  }
  return out;
}

std::string renderSvg(const PlotSpec& spec) {
  SvgCanvas c(spec.width, spec.height);
  draw(spec, c);
  return c.finish();
}

std::vector<uint8_t> renderRgb(const PlotSpec& spec) {
  RasterCanvas c(spec.width, spec.height);
  draw(spec, c);
  return c.pixels();
}

void writePlot(const PlotSpec& spec, const std::string& path) {
  std::filesystem::path p(path);
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  MANTISSA_CHECK(ext == ".svg" || ext == ".png", "--output ", path,
                 ": unknown extension (allowed: .svg, .png)");
  MANTISSA_CHECK(spec.width >= 100 && spec.height >= 100, "--output ", path, ": a chart of ",
                 spec.width, "x", spec.height, " pixels is too small");
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    MANTISSA_CHECK(!ec, "--output ", path, ": cannot create directory ", p.parent_path().string(),
                   ": ", ec.message());
  }
  if (ext == ".svg") {
    std::string svg = renderSvg(spec);
    std::ofstream f(path, std::ios::binary);
    f << svg;
    f.close();
    MANTISSA_CHECK(f.good(), "--output ", path, ": cannot write the file");
  } else {
    std::vector<uint8_t> rgb = renderRgb(spec);
    int ok = stbi_write_png(path.c_str(), spec.width, spec.height, 3, rgb.data(), spec.width * 3);
    MANTISSA_CHECK(ok != 0, "--output ", path, ": cannot write the PNG file");
  }
}

}  // namespace mantissa::cli
