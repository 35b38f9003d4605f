// Plain scalar references: the specification of every op in ops.h. Written for clarity, not speed; sums are
// accumulated in double so the fast kernels are compared against (nearly) exact values.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

namespace lowbit::kernels {

size_t weight_type_bytes(WeightType t) {
  switch (t) {
    case WeightType::F32:
      return 4;
    case WeightType::F16:
    case WeightType::BF16:
      return 2;
  }
  return 0;
}

namespace ref {

namespace {
float weight_at(WeightType wt, const void* W, size_t i) {
  switch (wt) {
    case WeightType::F32:
      return static_cast<const float*>(W)[i];
    case WeightType::F16:
      return half_to_f32(static_cast<const uint16_t*>(W)[i]);
    case WeightType::BF16:
      return bf16_to_f32_inline(static_cast<const uint16_t*>(W)[i]);
  }
  return 0.0f;
}
}  // namespace

void matmul(WeightType wt, const void* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y) {
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (size_t k = 0; k < cols; ++k) sum += double(weight_at(wt, W, r * cols + k)) * double(x[t * cols + k]);
      y[t * rows + r] = static_cast<float>(sum);
    }
  }
}

void matmul_bf16_acts(const uint16_t* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y) {
  std::vector<float> xr(n_tokens * cols);
  std::vector<uint16_t> b(xr.size());
  f32_to_bf16(x, b.data(), b.size());
  for (size_t i = 0; i < b.size(); ++i) xr[i] = bf16_to_f32_inline(b[i]);
  matmul(WeightType::BF16, W, rows, cols, xr.data(), n_tokens, y);
}

void attention(const float* q, size_t n_tokens, size_t pos0, const float* k, const float* v, size_t kv_stride,
               size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out, size_t head_stride) {
  const size_t group = n_heads / n_kv_heads;
  if (head_stride == 0) head_stride = head_dim;
  const double scale = 1.0 / std::sqrt(double(head_dim));
  std::vector<double> p(pos0 + n_tokens);
  for (size_t t = 0; t < n_tokens; ++t) {
    const size_t n_ctx = pos0 + t + 1;  // causal: keys 0 .. pos0 + t
    for (size_t h = 0; h < n_heads; ++h) {
      const float* qh = q + (t * n_heads + h) * head_dim;
      const size_t kvh = h / group;
      double mx = -INFINITY;
      for (size_t j = 0; j < n_ctx; ++j) {
        const float* kj = k + j * kv_stride + kvh * head_stride;
        double s = 0.0;
        for (size_t d = 0; d < head_dim; ++d) s += double(qh[d]) * double(kj[d]);
        p[j] = s * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0.0;
      for (size_t j = 0; j < n_ctx; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      float* oh = out + (t * n_heads + h) * head_dim;
      for (size_t d = 0; d < head_dim; ++d) {
        double acc = 0.0;
        for (size_t j = 0; j < n_ctx; ++j) acc += p[j] * double(v[j * kv_stride + kvh * head_stride + d]);
        oh[d] = static_cast<float>(acc / sum);
      }
    }
  }
}

void rmsnorm(const float* x, const float* w, float* y, size_t n, float eps) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// The angle sequence is computed exactly as llama.cpp's ggml_rope_cache_init does (ext_factor 0,
// freq_scale 1, attn_factor 1): theta starts at (float)pos and is multiplied, in float, by
// theta_scale = powf(freq_base, -2/rot_dim) once per pair. This differs from pos * freq_base^(-2i/rot_dim)
// evaluated exactly by a few float ulps of the angle, and matches llama.cpp's outputs.
void rope(float* v, size_t n_heads, size_t head_dim, size_t rot_dim, size_t pos, float freq_base) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rot_dim));
  for (size_t h = 0; h < n_heads; ++h) {
    float* vh = v + h * head_dim;
    float theta = static_cast<float>(pos);
    for (size_t i = 0; i < rot_dim / 2; ++i) {
      const float c = std::cos(theta), s = std::sin(theta);
      const float x0 = vh[2 * i], x1 = vh[2 * i + 1];
      vh[2 * i] = x0 * c - x1 * s;
      vh[2 * i + 1] = x0 * s + x1 * c;
      theta *= theta_scale;
    }
  }
}

void swiglu(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace ref
}  // namespace lowbit::kernels
