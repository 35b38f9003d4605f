// Element-wise ops: rmsnorm and swiglu (SIMD, Highway), rope and the f16/bf16 conversions (scalar), and the
// name of the dispatched SIMD target.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

// clang-format off
#include "kernels/hwy_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void RmsnormImpl(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, float* y, size_t n, float eps) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const auto a = hn::LoadU(df, x + i), b = hn::LoadU(df, x + i + N);
    const auto c = hn::LoadU(df, x + i + 2 * N), d = hn::LoadU(df, x + i + 3 * N);
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
    s2 = hn::MulAdd(c, c, s2);
    s3 = hn::MulAdd(d, d, s3);
  }
  for (; i + N <= n; i += N) {
    const auto a = hn::LoadU(df, x + i);
    s0 = hn::MulAdd(a, a, s0);
  }
  float ss = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vs = hn::Set(df, scale);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, w + i)), df, y + i);
  for (; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// silu(g) * u = g / (1 + exp(-g)) * u. exp's argument is clamped to 88 (exp(88) ~ 1.6e38 < FLT_MAX) so that
// very negative gates give a tiny result (|g| * 6e-39 at most) instead of relying on exp overflowing to inf.
void SwigluImpl(const float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const auto one = hn::Set(df, 1.0f);
  const auto hi = hn::Set(df, 88.0f);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(df, gate + i);
    const auto e = hwy::HWY_NAMESPACE::Exp(df, hn::Min(hn::Neg(g), hi));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(std::min(-g, 88.0f))) * up[i];
  }
}

int64_t TargetImpl() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(RmsnormImpl);
HWY_EXPORT(SwigluImpl);
HWY_EXPORT(TargetImpl);

void rmsnorm(const float* x, const float* w, float* y, size_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsnormImpl)(x, w, y, n, eps);
}

void swiglu(const float* gate, const float* up, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluImpl)(gate, up, out, n);
}

// Same angles as ref::rope (llama.cpp's float recurrence theta *= theta_scale, see ref.cc), with the
// cos/sin table computed once and applied to every head.
void rope(float* v, size_t n_heads, size_t head_dim, size_t rot_dim, size_t pos, float freq_base) {
  const size_t n_pairs = rot_dim / 2;
  float cs_stack[2 * 256];
  std::vector<float> cs_heap;
  float* cs = cs_stack;
  if (n_pairs > 256) {
    cs_heap.resize(2 * n_pairs);
    cs = cs_heap.data();
  }
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rot_dim));
  float theta = static_cast<float>(pos);
  for (size_t i = 0; i < n_pairs; ++i) {
    cs[2 * i] = std::cos(theta);
    cs[2 * i + 1] = std::sin(theta);
    theta *= theta_scale;
  }
  for (size_t h = 0; h < n_heads; ++h) {
    float* vh = v + h * head_dim;
    for (size_t i = 0; i < n_pairs; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float x0 = vh[2 * i], x1 = vh[2 * i + 1];
      vh[2 * i] = x0 * c - x1 * s;
      vh[2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_half(x[i]);
}
void f32_to_bf16(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16_inline(x[i]);
}
float f16_to_f32(uint16_t h) { return half_to_f32(h); }
float bf16_to_f32(uint16_t h) { return bf16_to_f32_inline(h); }

const char* simd_target_name() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(TargetImpl)()); }

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
