#pragma once

#include "core/Tensor.h"

namespace mantissa {

/// Elementwise ops on F32 tensors with NumPy broadcasting. Each records its gradient when an
/// input needs one; gradients are reduced back to each input's pre-broadcast shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float s);
Tensor mul(const Tensor& a, float s);
/// max(a, b) and min(a, b); the gradient goes to the selected operand (to `a` on ties).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
/// x^p for a scalar exponent.
Tensor pow(const Tensor& x, float p);
/// |x|; the gradient at 0 is 0.
Tensor abs(const Tensor& x);
/// Limits to [lo, hi]; the gradient is 1 strictly inside and at the bounds, 0 outside.
Tensor clamp(const Tensor& x, float lo, float hi);
/// cond ? a : b with broadcasting; `cond` is any dtype, non-zero means true; no gradient to cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

Tensor relu(const Tensor& x);
Tensor leakyRelu(const Tensor& x, float negativeSlope = 0.01f);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

/// Comparisons producing 0/1 F32 masks (no gradient).
Tensor greater(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, float s) { return add(a, -s); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
inline Tensor operator*(float s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, float s) { return mul(a, 1.0f / s); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace mantissa
