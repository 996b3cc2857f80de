#include "layers/Conv2d.h"

#include <algorithm>
#include <cmath>

#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"
#include "core/ops/detail/BfpConv.h"
#include "core/ops/detail/BfpConvWeights.h"
#include "core/ops/detail/BfpGemm.h"
#include "core/parallel/ParallelFor.h"

namespace mantissa::nn {

namespace {

/// Input channels per group from which Conv2d's forward takes the int8 block-FP path through
/// the implicit GEMM (geometries the direct kernel does not take; see the comment at the gate
/// in Conv2d::forward).
constexpr int64_t kInt8MinChannels = 64;
/// Channels along the reduction (input channels for forward, output channels for
/// backward-data) from which the direct kernel takes a stride-1 "same" convolution: ResNet-20's
/// first conv (1 input channel, 3 of 4 bytes of each dword padding and one epilogue per
/// vpdpbusd) ran at 0.25x the bf16 path, 16 channels at 1.2x (mantissa-bench-int8 --conv).
constexpr int64_t kInt8DirectMinChannels = 16;
/// Input and output channels from which backward-weights of the same geometry takes
/// ops::detail::bfpConv2dBackwardWeights: packing x and gy from their HBFP codes, it runs at
/// 1.2-1.4x the bf16 path's oneDNN backward-weights on ResNet-20's 16-, 32- and 64-channel layers
/// (mantissa-bench-int8-wgrad, one thread; from FP32 values it was 0.92-0.98x on the first two).
/// Gates at 16, 32 and 64 compared on whole training steps in docs/performance.md: 16 pays most.
constexpr int64_t kInt8WeightGradMinChannels = 16;

/// Points the activation operand of bfpConv2d at an int8 operand: its codes (mantissas, and
/// exponents [N, 1, C/block, H, W]) or its values. `hold` keeps what it points at alive.
void setInput(ops::detail::BfpConvInput& in, const Int8Operand& op, Tensor hold[2]) {
  if (op.hasCodes()) {
    hold[0] = op.codes.codes.contiguous(), hold[1] = op.codes.exponents.contiguous();
    in.mantissas = hold[0].data<int8_t>(), in.exponents = hold[1].data<int16_t>();
  } else {
    hold[0] = op.f32.contiguous();
    in.values = hold[0].data<float>();
  }
}

/// Points the weight operand of bfpConv2d at an int8 operand (w [1, O, C, k, k]) read from
/// element offset `at`, with the strides already set for values and mantissas and the exponent
/// strides in `w`; the exponent pointer starts at offset `eAt`.
void setWeight(ops::detail::BfpConvWeight& w, const Int8Operand& op, int64_t at, int64_t eAt,
               Tensor hold[2]) {
  if (op.hasCodes()) {
    hold[0] = op.codes.codes.contiguous(), hold[1] = op.codes.exponents.contiguous();
    w.mantissas = hold[0].data<int8_t>() + at, w.exponents = hold[1].data<int16_t>() + eAt;
  } else {
    hold[0] = op.f32.contiguous();
    w.values = hold[0].data<float>() + at;
  }
}

}  // namespace

Conv2d::Conv2d(int64_t inChannels, int64_t outChannels, Size2d kernel, Rng& rng, Conv2dOptions opts)
    : DotProductLayer("Conv2d"), in_(inChannels), out_(outChannels), kernel_(kernel), opts_(opts) {
  MANTISSA_CHECK(inChannels > 0 && outChannels > 0, "Conv2d: channels must be positive, got ",
                 inChannels, " -> ", outChannels);
  MANTISSA_CHECK(kernel.h > 0 && kernel.w > 0, "Conv2d: kernel ", kernel.toString(),
                 " must be positive");
  MANTISSA_CHECK(opts.groups > 0 && inChannels % opts.groups == 0 && outChannels % opts.groups == 0,
                 "Conv2d: groups ", opts.groups, " must divide both in (", inChannels,
                 ") and out (", outChannels, ") channels");
  // PyTorch _ConvNd.reset_parameters: kaiming_uniform_(a = sqrt(5)) gives the bound
  // gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1/sqrt(fan_in); the bias uses
  // the same bound. fan_in = weight.size(1) * kH * kW.
  const int64_t fanIn = inChannels / opts.groups * kernel.h * kernel.w;
  const float bound = 1.0f / std::sqrt(static_cast<float>(fanIn));
  weight_ = registerParameter(
      "weight", Tensor::rand({outChannels, inChannels / opts.groups, kernel.h, kernel.w}, rng,
                             -bound, bound));
  if (opts.bias) bias_ = registerParameter("bias", Tensor::rand({outChannels}, rng, -bound, bound));
  weightBlockAxis_ = 1;
}

Tensor Conv2d::forward(const Tensor& input) {
  MANTISSA_CHECK(input.dim() == 4 && input.size(1) == in_, "Conv2d(", in_, ", ", out_,
                 "): input of shape ", toString(input.shape()), " (expected [N, ", in_, ", H, W])");
  const mantissa::Conv2dOptions o = opts_.op();
  const Shape xShape = input.shape(), wShape = weight_.shape();
  const Shape yShape = conv2dOutputShape(xShape, wShape, o);  // validates, names the op
  const int64_t G = opts_.groups, n = xShape[0];
  // Grouped views: a group axis in front of each channel axis, so that every block of a
  // blocked format stays inside one group's dot products (the GEMMs oneDNN runs per group).
  // For groups == 1 these are size-1 axes and every view is free.
  const Shape x5{n, G, in_ / G, xShape[2], xShape[3]};
  const Shape w5{G, out_ / G, in_ / G, wShape[2], wShape[3]};
  const Shape y5{n, G, out_ / G, yShape[2], yShape[3]};

  Gemms g;
  g.opName = "conv2d";
  // x [N, G, C/G, H, W]: forward reduces over channels; backward-weights over N, H, W.
  g.xForward = {2};
  g.xWeightGrad = {0, 3, 4};
  // w [G, O/G, C/G, kH, kW]: forward reduces over input channels (per output channel and
  // tap); backward-data (the transposed convolution) over output channels.
  g.wForward = {2};
  g.wDataGrad = {1};
  // gy [N, G, O/G, H', W']: backward-data over output channels; backward-weights over N, H', W'.
  g.gyDataGrad = {2};
  g.gyWeightGrad = {0, 3, 4};
  g.forward = [=](const Tensor& x, const Tensor& w) {
    return conv2dForward(x.reshape(xShape), w.reshape(wShape), Tensor(), o).reshape(y5);
  };
  g.backwardData = [=](const Tensor& gy, const Tensor& w) {
    return conv2dBackwardData(gy.reshape(yShape), w.reshape(wShape), xShape, o).reshape(x5);
  };
  g.backwardWeights = [=](const Tensor& x, const Tensor& gy) {
    return conv2dBackwardWeights(x.reshape(xShape), gy.reshape(yShape), wShape, o, false)
        .weight.reshape(w5);
  };
  // int8 block-FP GEMMs (DotProductLayer::Gemms). Stride 1 with "same" padding, groups 1: the
  // direct convolution ops::detail::bfpConv2d, for forward and for backward-data (which is then
  // the same kind of convolution: the output gradient with the weight transposed to [C, O, k, k]
  // and flipped, padding k-1-p = p; its blocks run along O, as the kernel's along its C).
  const int64_t kh = wShape[2], kw = wShape[3];
  const bool direct = G == 1 && kh == kw && kh % 2 == 1 && o.stride == Size2d(1) &&
                      o.dilation == Size2d(1) && o.padding == Size2d((kh - 1) / 2);
  if (direct && in_ >= kInt8DirectMinChannels) {
    g.int8Forward = [=](const Int8Operand& x, const Int8Operand& w,
                        const Int8Operands& ob) -> Tensor {
      namespace od = ops::detail;
      const int64_t C = xShape[1], O = wShape[0], T = kh * kw, CB = (C + ob.block - 1) / ob.block;
      Tensor y = Tensor::uninitialized(y5), hx[2], hw[2];
      od::BfpConvInput in{.N = n, .C = C, .H = xShape[2], .W = xShape[3], .bits = ob.bitsA};
      setInput(in, x, hx);
      // w [O, C, T] blocked along C per (o, t): exponents [O, CB, T].
      od::BfpConvWeight wt{.O = O,
                           .C = C,
                           .k = kh,
                           .sO = C * T,
                           .sC = T,
                           .sT = 1,
                           .eO = CB * T,
                           .eCB = T,
                           .eT = 1,
                           .bits = ob.bitsB};
      setWeight(wt, w, 0, 0, hw);
      return od::bfpConv2d(in, wt, ob.block, y.data<float>()) ? y : Tensor();
    };
  }
  if (direct && out_ >= kInt8DirectMinChannels) {
    g.int8BackwardData = [=](const Int8Operand& gy, const Int8Operand& w,
                             const Int8Operands& ob) -> Tensor {
      namespace od = ops::detail;
      const int64_t C = xShape[1], O = wShape[0], T = kh * kw;
      Tensor gx = Tensor::uninitialized(x5), hg[2], hw[2];
      od::BfpConvInput in{.N = n, .C = O, .H = yShape[2], .W = yShape[3], .bits = ob.bitsA};
      setInput(in, gy, hg);
      // w'[c, o, t] = w[o, c, T-1-t]: the flipped kernel, blocked along o (exponents of w
      // [OB, C, T]).
      od::BfpConvWeight wt{.O = C,
                           .C = O,
                           .k = kh,
                           .sO = T,
                           .sC = C * T,
                           .sT = -1,
                           .eO = T,
                           .eCB = C * T,
                           .eT = -1,
                           .bits = ob.bitsB};
      setWeight(wt, w, T - 1, T - 1, hw);
      return od::bfpConv2d(in, wt, ob.block, gx.data<float>()) ? gx : Tensor();
    };
  }
  // Backward-weights of the same geometry: ops::detail::bfpConv2dBackwardWeights, whose x and gy
  // are blocked along (N, H, W) per channel: HBFP codes (I8 mantissas of x5 / gy5, exponents
  // [1, channels, blocks]).
  if (direct && std::min(in_, out_) >= kInt8WeightGradMinChannels) {
    g.int8BackwardWeights = [=](const Int8Operand& x, const Int8Operand& gy,
                                const Int8Operands& ob) -> Tensor {
      namespace od = ops::detail;
      MANTISSA_CHECK(x.hasCodes() && gy.hasCodes() && x.codes.codes.dtype() == DType::I8 &&
                         gy.codes.codes.dtype() == DType::I8,
                     "Conv2d: int8 weight gradient expects I8 HBFP codes");
      const Tensor xc = x.codes.codes.contiguous(), gc = gy.codes.codes.contiguous();
      const Tensor xe = x.codes.exponents.contiguous(), ge = gy.codes.exponents.contiguous();
      Tensor dw = Tensor::uninitialized(w5);
      const od::BfpWeightGradArgs a{.x = xc.data<int8_t>(),
                                    .xExps = xe.data<int16_t>(),
                                    .gy = gc.data<int8_t>(),
                                    .gyExps = ge.data<int16_t>(),
                                    .N = n,
                                    .C = xShape[1],
                                    .O = wShape[0],
                                    .H = xShape[2],
                                    .W = xShape[3],
                                    .k = kh,
                                    .bitsX = ob.bitsA,
                                    .bitsGy = ob.bitsB};
      return od::bfpConv2dBackwardWeights(a, ob.block, dw.data<float>()) ? dw : Tensor();
    };
  }
  // Other geometries, forward only: an implicit GEMM per group, rows = output
  // pixels, K = taps x input channels of the group, one segment per tap. x's channel vectors are
  // packed once per input pixel (its blocks run along C, per pixel); row (pixel, tap) points at
  // the input pixel the tap reads, or at a zero row for padding; no im2col. The weight is
  // blocked along C per (output channel, tap): its segment t holds tap t.
  // Only from 64 input channels per group: with 16- and 32-channel blocks the per-block work
  // (start value, convert, scale, FMA, after only 4 or 8 vpdpbusd) made the forward slower than
  // the bf16 path (docs/performance.md; ResNet-20 steps 0.86x with the gate at 32, 0.99x at 64).
  if (!direct && in_ / G >= kInt8MinChannels) {
    g.int8Forward = [=, in = in_, out = out_](const Int8Operand& x, const Int8Operand& w,
                                              const Int8Operands& ob) -> Tensor {
      namespace od = ops::detail;
      const int64_t H = xShape[2], W = xShape[3], OH = yShape[2], OW = yShape[3];
      const int64_t T = kh * kw, HW = H * W, OHW = OH * OW;
      const int64_t Cg = in / G, Og = out / G, M = n * OHW, CgB = (Cg + ob.block - 1) / ob.block;
      // x [N, G, C/G, H, W] (exponents [N, G, CgB, H, W]) and w [G, O/G, C/G, k, k] (exponents
      // [G, O/G, CgB, k, k]) as codes, or as values.
      Tensor hx[2], hw[2];
      od::BfpSource a{.rows1 = n,
                      .rows2 = HW,
                      .segments = G,
                      .segLen = Cg,
                      .s1 = in * HW,
                      .s2 = 1,
                      .sSeg = Cg * HW,
                      .sk = HW,
                      .bits = ob.bitsA};
      const int8_t* wm = nullptr;
      const int16_t* we = nullptr;
      const float* wv = nullptr;
      if (x.hasCodes()) {
        hx[0] = x.codes.codes.contiguous(), hx[1] = x.codes.exponents.contiguous();
        a.mantissas = hx[0].data<int8_t>(), a.exponents = hx[1].data<int16_t>();
        a.e1 = G * CgB * HW, a.e2 = 1, a.eSeg = CgB * HW, a.eb = HW;
      } else {
        hx[0] = x.f32.contiguous();
        a.values = hx[0].data<float>();
      }
      if (w.hasCodes()) {
        hw[0] = w.codes.codes.contiguous(), hw[1] = w.codes.exponents.contiguous();
        wm = hw[0].data<int8_t>(), we = hw[1].data<int16_t>();
      } else {
        hw[0] = w.f32.contiguous();
        wv = hw[0].data<float>();
      }
      const od::BfpPackedA pa = od::bfpPackA(a, ob.block);
      std::vector<int32_t> index(static_cast<size_t>(M * T));
      parallelFor(0, n * OH, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {  // one output row (image b, row oy)
          const int64_t b = r / OH, oy = r % OH;
          int32_t* idx = index.data() + r * OW * T;
          for (int64_t ox = 0; ox < OW; ++ox) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              const int64_t iy = oy * o.stride.h - o.padding.h + ky * o.dilation.h;
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t ix = ox * o.stride.w - o.padding.w + kx * o.dilation.w;
                const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
                *idx++ = inside ? static_cast<int32_t>(b * HW + iy * W + ix) : -1;
              }
            }
          }
        }
      });
      // The kernel writes NCHW directly (BfpRowMap::planeRows): rows are the OH·OW pixels of
      // each image, columns the output channels.
      Tensor y = Tensor::uninitialized(y5);
      const od::BfpIsa isa = od::bestBfpIsa();
      for (int64_t grp = 0; grp < G; ++grp) {
        od::BfpSource bsrc{.rows1 = Og,
                           .segments = T,
                           .segLen = Cg,
                           .s1 = Cg * T,
                           .sSeg = 1,
                           .sk = T,
                           .bits = ob.bitsB};
        if (wm) {
          bsrc.mantissas = wm + grp * Og * Cg * T, bsrc.exponents = we + grp * Og * CgB * T;
          bsrc.e1 = CgB * T, bsrc.eSeg = 1, bsrc.eb = T;
        } else {
          bsrc.values = wv + grp * Og * Cg * T;
        }
        const od::BfpPackedB pb = od::bfpPackB(bsrc, ob.block);
        const od::BfpRowMap map{.rows = M, .segments = T, .index = index.data(),
                                .blockOffset = grp * pb.blocksPerSegment, .planeRows = OHW};
        if (!od::bfpGemmPacked(pa, map, pb, y.data<float>() + grp * Og * OHW, out, isa)) {
          return Tensor();
        }
      }
      return y;
    };
  }
  const Shape b5{1, G, out_ / G, 1, 1};
  Tensor y = run(
      input.reshape(x5), weight_.reshape(w5), bias_, g,
      [b5](const Tensor& out, const Tensor& b) { return add(out, b.reshape(b5)); },
      [o = out_](const Tensor& gy) {
        return sum(gy, {0, 3, 4}).reshape({o});
      });
  return y.reshape(yShape);
}

std::string Conv2d::extraRepr() const {
  std::string s =
      std::to_string(in_) + ", " + std::to_string(out_) + ", kernel=" + kernel_.toString();
  if (!(opts_.stride == Size2d(1))) s += ", stride=" + opts_.stride.toString();
  if (!(opts_.padding == Size2d(0))) s += ", padding=" + opts_.padding.toString();
  if (!(opts_.dilation == Size2d(1))) s += ", dilation=" + opts_.dilation.toString();
  if (opts_.groups != 1) s += ", groups=" + std::to_string(opts_.groups);
  if (!opts_.bias) s += ", bias=false";
  return s;
}

}  // namespace mantissa::nn
