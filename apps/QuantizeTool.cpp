// mantissa-quantize (docs/formats.md "Command-line tool"): how a user checks what a format does
// to their own tensors, and how anyone can compare Mantissa with another implementation. Bad
// input (missing file, wrong size, unsupported .npy, bad spec or option) is a clear message
// naming the file or option and exit code 2.
#include "apps/QuantizeTool.h"

#include <cxxopts.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "core/Error.h"

namespace mantissa::apps {
namespace {

static_assert(std::endian::native == std::endian::little, "raw files are little-endian");

/// Bad user input: exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& msg) { throw UsageError(msg); }

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string readWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot open for reading (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- .npy --------------------------------------------------------------------------------------

// The value text following 'key': in a NumPy header dict, or "" when absent.
std::string dictValue(const std::string& header, const std::string& key) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) return "";
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos) return "";
  size_t end;
  if (header[start] == '(') {
    end = header.find(')', start);
    return end == std::string::npos ? "" : header.substr(start, end - start + 1);
  }
  if (header[start] == '\'') {
    end = header.find('\'', start + 1);
    return end == std::string::npos ? "" : header.substr(start + 1, end - start - 1);
  }
  end = header.find_first_of(",}", start);
  std::string v = header.substr(start, end - start);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

Shape parseShapeTuple(const std::string& path, const std::string& tuple) {
  Shape shape;
  std::string inner = tuple.substr(1, tuple.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(' '), b = item.find_last_not_of(' ');
    if (a == std::string::npos) continue;  // trailing comma of a 1-tuple
    std::string num = item.substr(a, b - a + 1);
    try {
      size_t used = 0;
      long long v = std::stoll(num, &used);
      if (used != num.size() || v < 0) throw std::invalid_argument(num);
      shape.push_back(v);
    } catch (const std::exception&) {
      fail(path + ": bad .npy header: shape " + tuple + " is not a tuple of sizes");
    }
  }
  return shape;
}

Tensor readNpy(const std::string& path) {
  std::string data = readWholeFile(path);
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) {
    fail(path + ": not a .npy file (missing the \\x93NUMPY magic)");
  }
  auto major = static_cast<unsigned char>(data[6]);
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = static_cast<unsigned char>(data[8]) | (static_cast<size_t>(static_cast<unsigned char>(data[9])) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) fail(path + ": truncated .npy header");
    headerLen = 0;
    for (int i = 0; i < 4; ++i) headerLen |= static_cast<size_t>(static_cast<unsigned char>(data[8 + i])) << (8 * i);
    headerStart = 12;
  } else {
    fail(path + ": unsupported .npy format version " + std::to_string(major) + " (1, 2 or 3)");
  }
  if (headerStart + headerLen > data.size()) fail(path + ": truncated .npy header");
  std::string header = data.substr(headerStart, headerLen);
  std::string descr = dictValue(header, "descr");
  std::string fortran = dictValue(header, "fortran_order");
  std::string shapeText = dictValue(header, "shape");
  if (descr.empty() || fortran.empty() || shapeText.empty()) {
    fail(path + ": bad .npy header (needs 'descr', 'fortran_order' and 'shape'): " + header);
  }
  if (descr != "<f4") {
    fail(path + ": unsupported dtype '" + descr +
         "' (only little-endian float32 '<f4' is read; convert with arr.astype('<f4'))");
  }
  if (fortran != "False") {
    fail(path + ": Fortran-order arrays are not supported (save np.ascontiguousarray(arr))");
  }
  Shape shape = parseShapeTuple(path, shapeText);
  size_t payload = data.size() - headerStart - headerLen;
  auto n = static_cast<size_t>(numelOf(shape));
  if (payload != n * 4) {
    fail(path + ": shape " + shapeText + " needs " + std::to_string(n * 4) + " data bytes, the file has " +
         std::to_string(payload));
  }
  Tensor t = Tensor::empty(shape);
  if (n > 0) std::memcpy(t.data<float>(), data.data() + headerStart + headerLen, n * 4);
  return t;
}

std::string npyDescr(DType d) {
  switch (d) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::I64: return "<i8";
    case DType::I32: return "<i4";
    case DType::I16: return "<i2";
    case DType::U16: return "<u2";
    case DType::I8: return "|i1";
    case DType::U8: return "|u1";
  }
  return "?";
}

void writeBytes(const std::string& path, const std::string& prefix, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot open for writing (" + std::strerror(errno) + ")");
  f.write(prefix.data(), static_cast<std::streamsize>(prefix.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) fail(path + ": write failed");
}

// ---- options -----------------------------------------------------------------------------------

Shape parseShapeOption(const std::string& text) {
  Shape shape;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      shape.push_back(v);
    } catch (const std::exception&) {
      fail("--shape " + text + ": '" + item + "' is not a size (expected d0,d1,... e.g. 64,3,32,32)");
    }
  }
  if (shape.empty()) fail("--shape is empty (expected d0,d1,... e.g. 64,3,32,32)");
  return shape;
}

std::string withSuffix(const std::string& path, const std::string& suffix) {
  if (endsWith(path, ".npy")) return path.substr(0, path.size() - 4) + suffix + ".npy";
  return path + suffix;
}

std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

}  // namespace

Tensor readTensorFile(const std::string& path, const std::optional<Shape>& shape) {
  if (endsWith(path, ".npy")) {
    Tensor t = readNpy(path);
    if (shape && numelOf(*shape) == t.numel()) return t.reshape(*shape);
    if (shape) {
      fail("--shape " + toString(*shape) + " has " + std::to_string(numelOf(*shape)) +
           " elements but " + path + " holds " + std::to_string(t.numel()) + " " + toString(t.shape()));
    }
    return t;
  }
  std::string data = readWholeFile(path);
  if (data.size() % 4 != 0) {
    fail(path + ": " + std::to_string(data.size()) +
         " bytes is not a whole number of float32 values (raw files are little-endian float32)");
  }
  auto n = static_cast<int64_t>(data.size() / 4);
  Shape s = shape.value_or(Shape{n});
  if (numelOf(s) != n) {
    fail(path + ": holds " + std::to_string(n) + " float32 values but --shape " + toString(s) +
         " needs " + std::to_string(numelOf(s)));
  }
  Tensor t = Tensor::empty(s);
  if (n > 0) std::memcpy(t.data<float>(), data.data(), data.size());
  return t;
}

void writeTensorFile(const std::string& path, const Tensor& t) {
  Tensor c = t.contiguous();
  const void* ptr = c.numel() > 0 ? static_cast<const char*>(c.storage()->data()) +
                                        c.offset() * static_cast<int64_t>(elementSize(c.dtype()))
                                  : nullptr;
  if (!endsWith(path, ".npy")) {
    writeBytes(path, "", ptr, c.nbytes());
    return;
  }
  std::string shape = "(";
  for (int64_t d : c.shape()) shape += std::to_string(d) + ", ";
  if (c.dim() > 1) shape.resize(shape.size() - 2);
  if (c.dim() == 1) shape.resize(shape.size() - 1);  // "(5,)"
  shape += ")";
  std::string dict = "{'descr': '" + npyDescr(c.dtype()) + "', 'fortran_order': False, 'shape': " +
                     shape + ", }";
  // Pad with spaces so magic + length + dict + '\n' is a multiple of 64 (NumPy's alignment).
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string prefix = "\x93NUMPY";
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(dict.size() & 0xFF);
  prefix += static_cast<char>((dict.size() >> 8) & 0xFF);
  writeBytes(path, prefix + dict, ptr, c.nbytes());
}

ConversionStats conversionStats(const Tensor& x, const Tensor& q, const formats::QuantStats& qs,
                                double bitsPerValue) {
  std::vector<float> xv = x.toVector<float>(), qv = q.toVector<float>();
  ConversionStats s;
  s.count = static_cast<int64_t>(xv.size());
  s.bitsPerValue = bitsPerValue;
  double signal = 0, noise = 0, absSum = 0, relSum = 0;
  int64_t finite = 0, nonzero = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    double xi = xv[i], qi = qv[i];
    if (!std::isfinite(xi)) {
      ++s.nonFinite;
      continue;
    }
    double err = std::isfinite(qi) ? std::fabs(qi - xi) : std::numeric_limits<double>::infinity();
    signal += xi * xi;
    noise += err * err;
    absSum += err;
    s.maxAbsError = std::max(s.maxAbsError, err);
    ++finite;
    if (xi != 0) {
      double rel = err / std::fabs(xi);
      relSum += rel;
      s.maxRelError = std::max(s.maxRelError, rel);
      ++nonzero;
    }
  }
  s.sqnrDb = noise == 0 ? std::numeric_limits<double>::infinity()
                        : 10.0 * std::log10(signal / noise);
  s.meanAbsError = finite ? absSum / static_cast<double>(finite) : 0;
  s.meanRelError = nonzero ? relSum / static_cast<double>(nonzero) : 0;
  if (qs.count > 0) {
    s.fractionSaturated = static_cast<double>(qs.saturated) / static_cast<double>(qs.count);
    s.fractionFlushed = static_cast<double>(qs.flushed) / static_cast<double>(qs.count);
  }
  return s;
}

int runQuantizeTool(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("mantissa-quantize",
                           "Quantize a float32 tensor with a Mantissa number format");
  options.add_options()
      ("format", "format spec, e.g. e4m3, bf16, hbfp8:block=32, ffp8:e=4,f=3,b=7,s=1",
       cxxopts::value<std::string>())
      ("input", "input tensor: .npy ('<f4', C order) or raw little-endian float32 (.f32/.bin)",
       cxxopts::value<std::string>())
      ("output", "quantized tensor (.npy, or raw float32 for any other extension)",
       cxxopts::value<std::string>())
      ("shape", "shape of a raw input, d0,d1,... (default 1-D)", cxxopts::value<std::string>())
      ("axis", "block axis for blocked formats (HBFP); negative counts from the end",
       cxxopts::value<int64_t>()->default_value("-1"))
      ("codes", "also write the packed codes (.npy or raw); shared exponents go to "
                "<codes>.exponents", cxxopts::value<std::string>())
      ("stats", "print the error of the conversion")
      ("h,help", "show this help and the known formats");
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      out << options.help() << "\nFormats:\n";
      for (const auto& [spec, what] : formats::knownFormats()) {
        out << "  " << std::left << std::setw(24) << spec << what << "\n";
      }
      return 0;
    }
    if (!result.unmatched().empty()) fail("unexpected argument '" + result.unmatched().front() + "'");
    for (const char* required : {"format", "input", "output"}) {
      if (!result.count(required)) fail(std::string("missing --") + required + " (see --help)");
    }
    std::string spec = result["format"].as<std::string>();
    formats::FormatPtr format;
    try {
      format = formats::parse(spec);
    } catch (const Error& e) {
      fail(std::string("--format: ") + e.what());
    }
    std::optional<Shape> shape;
    if (result.count("shape")) shape = parseShapeOption(result["shape"].as<std::string>());
    std::string input = result["input"].as<std::string>();
    Tensor x = readTensorFile(input, shape);
    int64_t axis = result["axis"].as<int64_t>();
    if (x.dim() > 0 && (axis >= x.dim() || axis < -x.dim())) {
      fail("--axis " + std::to_string(axis) + " is out of range for shape " + toString(x.shape()));
    }

    formats::QuantStats qs;
    formats::QuantizeArgs args{.blockAxis = axis, .pointName = input, .stats = &qs};
    auto state = format->makeState();
    Tensor q;
    std::optional<formats::Encoded> enc;
    try {
      // One conversion: with --codes the output is decode(encode(x)), which equals quantize(x).
      if (result.count("codes")) {
        enc = format->encode(x, args, state.get());
        q = format->decode(*enc);
      } else {
        q = format->quantize(x, args, state.get());
      }
    } catch (const Error& e) {
      fail(input + ": " + e.what());
    }
    writeTensorFile(result["output"].as<std::string>(), q);
    if (enc) {
      std::string codesPath = result["codes"].as<std::string>();
      writeTensorFile(codesPath, enc->codes);
      out << "codes: " << codesPath << " (" << dtypeName(enc->codes.dtype()) << " "
          << toString(enc->shape) << ", spec " << enc->spec << ", packed bytes "
          << enc->packedBytes() << ")\n";
      if (enc->exponents.defined()) {
        std::string expPath = withSuffix(codesPath, ".exponents");
        writeTensorFile(expPath, enc->exponents);
        out << "exponents: " << expPath << " (" << dtypeName(enc->exponents.dtype()) << " "
            << toString(enc->exponents.shape()) << ")\n";
      }
      if (!enc->scalars.empty()) {
        out << "scalars:";
        for (double v : enc->scalars) out << " " << std::setprecision(9) << v;
        out << "\n";
      }
    }
    if (state) out << "state: " << state->describe() << "\n";
    if (result.count("stats")) {
      ConversionStats s = conversionStats(x, q, qs, format->bitsPerValue(x.shape(), axis));
      auto line = [&](const char* name, const std::string& v) {
        out << std::left << std::setw(18) << name << v << "\n";
      };
      line("format", format->spec());
      line("elements", std::to_string(s.count));
      line("bits per value", fmt(s.bitsPerValue));
      line("SQNR dB", fmt(s.sqnrDb));
      line("max abs error", fmt(s.maxAbsError));
      line("mean abs error", fmt(s.meanAbsError));
      line("max rel error", fmt(s.maxRelError));
      line("mean rel error", fmt(s.meanRelError));
      line("saturated", fmt(s.fractionSaturated) + " (" + std::to_string(qs.saturated) + ")");
      line("flushed to zero", fmt(s.fractionFlushed) + " (" + std::to_string(qs.flushed) + ")");
      line("non-finite input", std::to_string(s.nonFinite));
    }
    return 0;
  } catch (const UsageError& e) {
    err << "mantissa-quantize: error: " << e.what() << "\n";
    return 2;
  } catch (const cxxopts::exceptions::exception& e) {
    err << "mantissa-quantize: error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    err << "mantissa-quantize: internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace mantissa::apps
