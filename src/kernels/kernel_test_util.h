// Shared by the kernel tests (*_test.cc under src/kernels): random inputs, packed matrices, and the error
// measure every kernel-vs-reference check uses.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "quant/packed.h"

namespace lowbit::kernel_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// max |a - b| / max(max |b|, floor) (b the reference); 0 if both are all zero; NaN in a propagates.
inline double scaled_error(const std::vector<float>& a, const std::vector<float>& b, double floor = 0.0) {
  double max_ref = floor, max_err = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
    const double e = std::fabs(double(a[i]) - double(b[i]));
    if (!(e <= max_err)) max_err = e;  // propagates NaN
  }
  if (max_ref == 0.0) return max_err;
  return max_err / max_ref;
}

// Random codes (every code fixed_code when >= 0), scales of either sign with magnitudes 1/128 .. 1/64, mins
// in ±1/4.
inline PackedStorage random_packed(const PackedDesc& d, uint32_t seed, int fixed_code = -1) {
  PackedStorage s(d);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> code(0, (1u << d.bits) - 1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<uint8_t> q(d.cols);
  for (size_t r = 0; r < d.rows; ++r) {
    for (auto& c : q) c = static_cast<uint8_t>(fixed_code >= 0 ? uint32_t(fixed_code) : code(rng));
    pack_row_codes(d, q.data(), s.codes.data() + r * d.row_code_bytes());
  }
  for (auto& h : s.scales) {
    const float v = u(rng);
    h = kernels::f32_to_half((v < 0 ? -0.5f : 0.5f) * (1.0f + std::fabs(v)) / 64.0f);
  }
  for (auto& h : s.mins) h = kernels::f32_to_half(u(rng) / 4.0f);
  return s;
}

// The typical size of an output: max over outputs of sqrt(Σ_k (w_k·x_k)²). A single output (rows = tokens = 1)
// can be small by cancellation; the error of a float sum scales with its terms, not with its result.
inline double typical_output(const PackedMatrix& W, const float* x, size_t n_tokens) {
  const size_t cols = W.desc.cols;
  std::vector<float> w(cols);
  double m = 0.0;
  for (size_t r = 0; r < W.desc.rows; ++r) {
    dequantize_packed_row(W, r, w.data());
    for (size_t t = 0; t < n_tokens; ++t) {
      double s = 0.0;
      for (size_t k = 0; k < cols; ++k) s += double(w[k]) * x[t * cols + k] * double(w[k]) * x[t * cols + k];
      m = std::max(m, std::sqrt(s));
    }
  }
  return m;
}

}  // namespace lowbit::kernel_test
