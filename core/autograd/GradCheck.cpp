#include "core/autograd/GradCheck.h"

#include <cmath>
#include <sstream>

#include "core/Rng.h"
#include "core/autograd/Autograd.h"
#include "core/ops/Elementwise.h"
#include "core/ops/Reduce.h"

namespace mantissa::autograd {

namespace {
double projected(const Tensor& out, const Tensor& r) {
  Tensor o = out.detach().contiguous();
  const float* po = o.data<float>();
  const float* pr = r.data<float>();
  double acc = 0;
  for (int64_t i = 0; i < o.numel(); ++i) acc += static_cast<double>(po[i]) * pr[i];
  return acc;
}
}  // namespace

GradCheckResult gradCheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradCheckOptions opts) {
  GradCheckResult result;
  std::vector<Tensor> in;
  for (const Tensor& t : inputs) {
    if (t.needsGrad()) {
      Tensor leaf = t.detach().clone();
      leaf.requiresGrad();
      in.push_back(leaf);
    } else {
      in.push_back(t);
    }
  }
  Tensor out = fn(in);
  Rng rng(12345);
  Tensor r = Tensor::rand(out.shape(), rng, -1.f, 1.f);
  Tensor loss = sum(mul(out, r));
  loss.backward();

  NoGradGuard noGrad;
  for (size_t k = 0; k < in.size(); ++k) {
    if (!in[k].needsGrad()) continue;
    Tensor analytic = in[k].grad();
    const int64_t n = in[k].numel();
    std::vector<float> ga = analytic.defined() ? analytic.toVector<float>() : std::vector<float>(n, 0.f);
    float* p = in[k].data<float>();  // leaf clone: contiguous
    int64_t stride = opts.maxElements > 0 && n > opts.maxElements ? n / opts.maxElements : 1;
    for (int64_t i = 0; i < n; i += stride) {
      float saved = p[i];
      p[i] = static_cast<float>(saved + opts.eps);
      double up = projected(fn(in), r);
      p[i] = static_cast<float>(saved - opts.eps);
      double down = projected(fn(in), r);
      p[i] = saved;
      // Divide by the step actually taken in F32, not the requested one.
      double h = static_cast<double>(static_cast<float>(saved + opts.eps)) -
                 static_cast<double>(static_cast<float>(saved - opts.eps));
      double numeric = (up - down) / h;
      double diff = std::fabs(numeric - ga[i]);
      if (diff > opts.atol + opts.rtol * std::fabs(numeric)) {
        std::ostringstream os;
        os << "input " << k << " element " << i << ": analytic " << ga[i] << " vs numeric "
           << numeric << " (|diff| " << diff << ")";
        return {false, os.str()};
      }
    }
  }
  return result;
}

}  // namespace mantissa::autograd
