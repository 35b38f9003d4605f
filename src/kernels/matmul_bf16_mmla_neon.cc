// matmul_bf16_dot on aarch64 CPUs with the BF16 extension (FEAT_BF16, HWCAP2_BF16: Neoverse V1/N2, Cortex-A510/
// A710/X2 and later, Graviton 3, Apple M2): `bfmmla` (vbfmmlaq_f32(acc, a, b): a = 2×4 bf16, row i = halves
// 4i .. 4i+3; b = 2×4 bf16; acc lane 2i + j += Σ_k a[i][k] · b[j][k]), 16 multiply-adds per instruction against
// 4 for an fp32 FMA. The products are exact; Arm's BF16 arithmetic rounds the sums to odd and flushes
// denormals (the reference, ops.h's ref::matmul_bf16_acts, rounds to nearest: differences of an fp32 ulp per
// step). ARM keeps dense weights in the row layout (matmul_uses_dense_tiles is x86-only).
//
// Layouts (cp = cols rounded up to a multiple of 4, zeros past the last column; nc = cp / 4 column quads):
//   xp  per token pair p (an odd last token is paired with a zero token, whose outputs are never stored):
//       xp[(p·nc + c)·8 ..] = bf16(x_{2p}[4c .. 4c+4]) ‖ bf16(x_{2p+1}[4c .. 4c+4])
//   wp  per panel of 8 rows r0 .. r0+7 (the rows missing from the last panel are zeros), row pair h = rows
//       r0+2h, r0+2h+1: wp[(c·4 + h)·8 ..] = W[r0+2h][4c .. 4c+4] ‖ W[r0+2h+1][4c .. 4c+4] in bf16 (f16 weights
//       converted on the way: fcvtl + bfcvtn, nearest even); built once per panel per call and reused by every
//       token pair.
//   register tile: 8 rows (4 row pairs) × 2·kTP tokens (kTP ≤ 4): 4·kTP accumulators with lanes
//       [r0·t0, r0·t1, r1·t0, r1·t1]; per column quad 4 + kTP loads and 4·kTP bfmmla.
// Compared with ref::matmul_bf16_acts on odd shapes under qemu-aarch64 (-cpu max has BF16).
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/arm_features.h"
#include "kernels/half.h"
#include "kernels/ops.h"
#include "lowbit/error.h"

#if defined(__clang__)
#define LOWBIT_BF16_ATTR __attribute__((target("bf16")))
#else
#define LOWBIT_BF16_ATTR __attribute__((target("arch=armv8.2-a+bf16")))
#endif

namespace lowbit::kernels {
namespace {

constexpr size_t kPanelRows = 8;
constexpr size_t kMaxPairs = 4;  // token pairs per register tile

// Token pairs [p0, p1) of the n tokens of x.
void BuildTokenPairs(const float* x, size_t n, size_t cols, size_t nc, size_t p0, size_t p1, uint16_t* xp) {
  for (size_t p = p0; p < p1; ++p)
    for (size_t half = 0; half < 2; ++half) {
      const size_t t = 2 * p + half;
      uint16_t* o = xp + p * nc * 8 + 4 * half;
      for (size_t k = 0; k < 4 * nc; ++k)
        o[k / 4 * 8 + k % 4] = t < n && k < cols ? f32_to_bf16_inline(x[t * cols + k]) : 0;
    }
}

// Four weights of a row as bf16.
template <bool kF16>
LOWBIT_BF16_ATTR uint16x4_t LoadQuad(const uint16_t* a) {
  if constexpr (kF16)
    return vreinterpret_u16_bf16(vcvt_bf16_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(a)))));
  else
    return vld1_u16(a);
}

// The panel of rows r0 .. r0+7 (wp: nc · 32 halves).
template <bool kF16>
LOWBIT_BF16_ATTR void BuildPanel(const uint16_t* W, size_t rows, size_t cols, size_t nc, size_t r0, uint16_t* wp) {
  size_t c = 0;
  if (r0 + kPanelRows <= rows)  // whole quads of a whole panel: two 8-byte loads per 16-byte line
    for (; 4 * c + 4 <= cols; ++c)
      for (size_t h = 0; h < 4; ++h) {
        const uint16_t* a = W + (r0 + 2 * h) * cols + 4 * c;
        vst1q_u16(wp + (c * 4 + h) * 8, vcombine_u16(LoadQuad<kF16>(a), LoadQuad<kF16>(a + cols)));
      }
  for (; c < nc; ++c)
    for (size_t h = 0; h < 4; ++h)
      for (size_t j = 0; j < 8; ++j) {
        const size_t r = r0 + 2 * h + j / 4, k = 4 * c + j % 4;
        const uint16_t w = r < rows && k < cols ? W[r * cols + k] : 0;
        wp[(c * 4 + h) * 8 + j] = kF16 ? f16_to_bf16_inline(w) : w;  // (f16 zero is bf16 zero)
      }
}

// Rows r0 .. r0+nr-1 (nr ≤ 8) × token pairs p0 .. p0+kTP-1; y is n_tokens × rows.
template <size_t kTP>
LOWBIT_BF16_ATTR __attribute__((noinline)) void Tile(const uint16_t* wp, const uint16_t* xp, size_t nc, size_t p0,
                                                      size_t n_tokens, float* y, size_t rows, size_t r0, size_t nr) {
  float32x4_t acc[4][kTP];
  const uint16_t* xs[kTP];
  for (size_t tp = 0; tp < kTP; ++tp) {
    xs[tp] = xp + (p0 + tp) * nc * 8;
    for (size_t h = 0; h < 4; ++h) acc[h][tp] = vdupq_n_f32(0.0f);
  }
  for (size_t c = 0; c < nc; ++c) {
    bfloat16x8_t w[4];
    for (size_t h = 0; h < 4; ++h) w[h] = vreinterpretq_bf16_u16(vld1q_u16(wp + (c * 4 + h) * 8));
    for (size_t tp = 0; tp < kTP; ++tp) {
      const bfloat16x8_t xv = vreinterpretq_bf16_u16(vld1q_u16(xs[tp] + c * 8));
      for (size_t h = 0; h < 4; ++h) acc[h][tp] = vbfmmlaq_f32(acc[h][tp], w[h], xv);
    }
  }
  for (size_t h = 0; h < 4; ++h)
    for (size_t tp = 0; tp < kTP; ++tp) {
      alignas(16) float v[4];
      vst1q_f32(v, acc[h][tp]);
      const size_t t = 2 * (p0 + tp);
      for (size_t l = 0; l < 4; ++l) {
        const size_t i = 2 * h + l / 2, tt = t + l % 2;
        if (i < nr && tt < n_tokens) y[tt * rows + r0 + i] = v[l];
      }
    }
}

}  // namespace

bool matmul_bf16_dot_available(DenseLayout layout, WeightType wt) {
  return wt != WeightType::F32 && layout == DenseLayout::Rows && arm_has_bf16();
}

void matmul_bf16_dot(ThreadPool& pool, WeightType wt, const uint16_t* W, DenseLayout layout, size_t rows,
                     size_t cols, const float* x, size_t n_tokens, float* y) {
  if (!matmul_bf16_dot_available(layout, wt))
    fail("matmul_bf16_dot: this CPU has no BF16 extension, or the weights are not 16-bit in the row layout");
  if (rows == 0 || n_tokens == 0) return;
  if (cols == 0) {
    std::fill(y, y + rows * n_tokens, 0.0f);
    return;
  }
  const size_t nc = (cols + 3) / 4, n_pairs = (n_tokens + 1) / 2;
  // Reused per calling thread, growing only. (A thread_local named inside the lambdas would be each worker's
  // own: pass the pointer.)
  thread_local std::vector<uint16_t> xp_buf;
  if (xp_buf.size() < n_pairs * nc * 8) xp_buf.resize(n_pairs * nc * 8);
  uint16_t* xp = xp_buf.data();
  pool.parallel_for(n_pairs, 8,
                    [&](size_t p0, size_t p1) { BuildTokenPairs(x, n_tokens, cols, nc, p0, p1, xp); });
  const size_t panels = (rows + kPanelRows - 1) / kPanelRows;
  pool.parallel_for(panels, 1, [&](size_t g0, size_t g1) {
    std::vector<uint16_t> wp(nc * 32);
    for (size_t g = g0; g < g1; ++g) {
      const size_t r0 = g * kPanelRows, nr = std::min(kPanelRows, rows - r0);
      if (wt == WeightType::F16)
        BuildPanel<true>(W, rows, cols, nc, r0, wp.data());
      else
        BuildPanel<false>(W, rows, cols, nc, r0, wp.data());
      for (size_t p = 0; p < n_pairs; p += kMaxPairs) {
        switch (std::min(kMaxPairs, n_pairs - p)) {
          case 4: Tile<4>(wp.data(), xp, nc, p, n_tokens, y, rows, r0, nr); break;
          case 3: Tile<3>(wp.data(), xp, nc, p, n_tokens, y, rows, r0, nr); break;
          case 2: Tile<2>(wp.data(), xp, nc, p, n_tokens, y, rows, r0, nr); break;
          default: Tile<1>(wp.data(), xp, nc, p, n_tokens, y, rows, r0, nr); break;
        }
      }
    }
  });
}

}  // namespace lowbit::kernels
#endif  // __aarch64__
