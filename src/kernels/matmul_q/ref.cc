// The reference matmul_q: the definition of the op (see matmul_q.h). Plain scalar code, sums in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/half.h"
#include "kernels/matmul_q/matmul_q.h"

namespace lowbit::kernels::ref {

void quantize_activations(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums) {
  const size_t nb = (cols + kPackBlock - 1) / kPackBlock;
  for (size_t b = 0; b < nb; ++b) {
    const size_t k0 = b * kPackBlock, n = std::min(kPackBlock, cols - k0);
    float amax = 0.0f;
    for (size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[k0 + j]));
    scales[b] = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (size_t j = 0; j < kPackBlock; ++j) {
      // nearbyint rounds half to even in the default rounding mode, like the SIMD conversion.
      const int v = j < n ? static_cast<int>(std::nearbyint(x[k0 + j] * id)) : 0;
      xq[k0 + j] = static_cast<int8_t>(v);
      sum += v;
    }
    sums[b] = sum;
  }
}

void matmul_q(const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  const PackedDesc& d = W.desc;
  d.validate("matmul_q weights");
  const size_t rows = d.rows, cols = d.cols, ng = d.n_groups(), nb = d.n_blocks(), gs = d.group_size;
  const double zero = static_cast<double>(1 << (d.bits - 1));
  const bool a8 = d.act == ActivationMode::DynamicInt8;
  std::vector<float> w(cols);
  std::vector<uint8_t> q(nb * kPackBlock);
  std::vector<int8_t> xq(a8 ? n_tokens * nb * kPackBlock : 0);
  std::vector<float> s(a8 ? n_tokens * nb : 0);
  std::vector<int32_t> sums(a8 ? n_tokens * nb : 0);
  if (a8)
    for (size_t t = 0; t < n_tokens; ++t)
      quantize_activations(x + t * cols, cols, &xq[t * nb * kPackBlock], &s[t * nb], &sums[t * nb]);
  for (size_t r = 0; r < rows; ++r) {
    if (a8)
      unpack_row_codes(d, W.row_codes(r), q.data());
    else
      dequantize_packed_row(W, r, w.data());
    for (size_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * cols;
      double acc = 0.0;
      if (!a8) {
        for (size_t k = 0; k < cols; ++k) acc += double(w[k]) * double(xt[k]);
      } else {
        const int8_t* xqt = &xq[t * nb * kPackBlock];
        const float* st = &s[t * nb];
        for (size_t g = 0; g < ng; ++g) {
          const double dg = half_to_f32(W.scales[r * ng + g]);
          const double mg = d.has_zeros ? double(half_to_f32(W.mins[r * ng + g])) : -zero * dg;
          // The group's columns, split at block boundaries (a group may cover parts of blocks).
          for (size_t k0 = g * gs; k0 < (g + 1) * gs;) {
            const size_t b = k0 / kPackBlock, k1 = std::min((g + 1) * gs, (b + 1) * kPackBlock);
            int64_t dot = 0, sx = 0;
            for (size_t k = k0; k < k1; ++k) {
              dot += int64_t(q[k]) * xqt[k];
              sx += xqt[k];
            }
            acc += double(st[b]) * (dg * double(dot) + mg * double(sx));
            k0 = k1;
          }
        }
      }
      y[t * rows + r] = static_cast<float>(acc);
    }
  }
}

}  // namespace lowbit::kernels::ref
