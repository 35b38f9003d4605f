// matmul: y[t][r] = sum_k W[r][k] * x[t][k] for fp32 / f16 / bf16 weights W (rows × cols, row-major) and fp32
// activations x (n_tokens × cols). Compiled once per SIMD target (Highway), dispatched at run time.
//
// Two kernels, both accumulating each output in fp32 lanes (sequential sums over k per lane, then a lane sum
// or none), which keeps F32 results within ~1e-6 of the exact value:
//
// * Dot form (n_tokens < kOuterMinTokens, in particular decode): one weight row at a time against up to 4
//   tokens, with >= 4 independent vector accumulators; every weight byte is read from memory once per call,
//   strictly sequentially, so the kernel streams W at memory bandwidth (x stays in L1). Reading 4 rows'
//   streams interleaved, sharing the x loads, measured at about half the bandwidth on Zen4, because the
//   hardware prefetchers follow one sequential stream per thread much better. Lanes are summed at the end
//   of the row. Threads split the rows (grain 16).
//
// * Outer-product form (prefill): x is first packed transposed into token panels xT[k][P] of
//   P = 3 vectors of tokens (48 on AVX-512), zero padded. A register tile of kR rows (8 on 32-register
//   targets, 4 on AVX2) × 3 token vectors holds 24 (12) accumulators; per k it loads 3 panel vectors and
//   broadcasts one weight per row, so there is no lane reduction and 24 FMAs per 11 loads (measured at
//   ~90% of the FMA peak of one Zen4 core). 16-bit weight rows are converted once per row block into an fp32
//   scratch that stays in L1 while all token panels of the current block pass by. Tokens are processed in
//   blocks of panels whose packed size fits in L2 (kPanelBlockBytes); threads split the rows.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

// clang-format off
#include "kernels/hwy_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#include "kernels/keep_in_reg-inl.h"

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
    HWY_TARGET == HWY_SCALAR
constexpr size_t kNumRegs = 16;
#else
constexpr size_t kNumRegs = 32;
#endif

// Dot form: the largest token count per call of DotRow.
constexpr size_t kDotMaxT = 4;
// Outer-product form: rows per tile, token vectors per tile (= per panel).
constexpr size_t kOuterR = kNumRegs >= 32 ? 8 : 4;
constexpr size_t kOuterV = 3;
// Use the outer-product kernel from this many tokens on.
constexpr size_t kOuterMinTokens = 8;
// Packed token panels processed per row block are limited to about this many bytes (L2 is 1 MiB).
constexpr size_t kPanelBlockBytes = 512 * 1024;

// ---------------------------------------------------------------------------------------------------------
// Weight element access for the three weight types.

HWY_INLINE VF LoadW(DF df, const float* HWY_RESTRICT p) { return hn::LoadU(df, p); }
HWY_INLINE VF LoadW(DF df, const hwy::float16_t* HWY_RESTRICT p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  auto h = hn::LoadU(dh, p);
  LOWBIT_KEEP_IN_REG(h);  // a plain load, not folded into vcvtph2ps (keep_in_reg-inl.h says why)
  return hn::PromoteTo(df, h);
}
HWY_INLINE VF LoadW(DF df, const hwy::bfloat16_t* HWY_RESTRICT p) {
  const hn::Rebind<hwy::bfloat16_t, DF> db;
  return hn::PromoteTo(df, hn::LoadU(db, p));
}

HWY_INLINE float ScalarW(const float* p) { return *p; }
HWY_INLINE float ScalarW(const hwy::float16_t* p) {
  uint16_t b;
  std::memcpy(&b, p, 2);
  return half_to_f32(b);
}
HWY_INLINE float ScalarW(const hwy::bfloat16_t* p) {
  uint16_t b;
  std::memcpy(&b, p, 2);
  return bf16_to_f32_inline(b);
}

// ---------------------------------------------------------------------------------------------------------
// Dot form.

// y[t*ldy] = dot(w, x row t) for t < kT; w and the x rows have length cols (x rows stride cols).
// kU-fold unrolling over k keeps kU·kT >= 4 independent accumulator chains.
template <size_t kT, typename WT>
HWY_INLINE void DotRow(const WT* HWY_RESTRICT w, size_t cols, const float* HWY_RESTRICT x, float* HWY_RESTRICT y,
                       size_t ldy) {
  constexpr size_t kU = kT == 1 ? 4 : (kT == 2 ? 2 : 1);
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kU][kT];
  for (size_t u = 0; u < kU; ++u)
    for (size_t t = 0; t < kT; ++t) acc[u][t] = hn::Zero(df);
  size_t k = 0;
  for (; k + kU * N <= cols; k += kU * N) {
    for (size_t u = 0; u < kU; ++u) {
      const VF wv = LoadW(df, w + k + u * N);
      for (size_t t = 0; t < kT; ++t) acc[u][t] = hn::MulAdd(wv, hn::LoadU(df, x + t * cols + k + u * N), acc[u][t]);
    }
  }
  for (; k + N <= cols; k += N) {
    const VF wv = LoadW(df, w + k);
    for (size_t t = 0; t < kT; ++t) acc[0][t] = hn::MulAdd(wv, hn::LoadU(df, x + t * cols + k), acc[0][t]);
  }
  for (size_t t = 0; t < kT; ++t) {
    for (size_t u = 1; u < kU; ++u) acc[0][t] = hn::Add(acc[0][t], acc[u][t]);
    float s = hn::GetLane(hn::SumOfLanes(df, acc[0][t]));
    for (size_t kk = k; kk < cols; ++kk) s += ScalarW(w + kk) * x[t * cols + kk];
    y[t * ldy] = s;
  }
}

// Rows [r0, r1), one row at a time (a purely sequential read of W: interleaving several rows' streams
// measured at half the bandwidth here), all tokens in chunks of at most kDotMaxT; the row stays in L1
// across chunks.
template <typename WT>
void DotRange(const WT* HWY_RESTRICT W, size_t rows, size_t cols, const float* HWY_RESTRICT x, size_t n_tokens,
              float* HWY_RESTRICT y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const WT* w = W + r * cols;
    size_t t = 0;
    for (; t + kDotMaxT <= n_tokens; t += kDotMaxT) DotRow<kDotMaxT>(w, cols, x + t * cols, y + t * rows + r, rows);
    switch (n_tokens - t) {
      case 3:
        if constexpr (kDotMaxT > 3) DotRow<3>(w, cols, x + t * cols, y + t * rows + r, rows);
        break;
      case 2:
        if constexpr (kDotMaxT > 2) DotRow<2>(w, cols, x + t * cols, y + t * rows + r, rows);
        break;
      case 1:
        DotRow<1>(w, cols, x + t * cols, y + t * rows + r, rows);
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Outer-product form.

// Packs tokens [p*P, p*P + P) of x into panel p: xT[k*P + j] = x[(p*P + j)*cols + k], zero beyond n_tokens.
// Blocked over k so that the panel rows being written (64 × P floats, 12 KiB) stay in L1 while each token's
// 64 values are read sequentially. (k-outer order reads with a stride of cols floats, which for cols = 1536
// maps the token rows onto two L1 sets and thrashes; token-outer order misses L1 on every store.)
void PackPanel(const float* HWY_RESTRICT x, size_t n_tokens, size_t cols, size_t P, size_t p, float* HWY_RESTRICT xT) {
  constexpr size_t kBlock = 64;
  const size_t t0 = p * P;
  const size_t nt = std::min(P, n_tokens - t0);
  const float* HWY_RESTRICT xp = x + t0 * cols;
  for (size_t k0 = 0; k0 < cols; k0 += kBlock) {
    const size_t k1 = std::min(cols, k0 + kBlock);
    for (size_t j = 0; j < nt; ++j) {
      const float* HWY_RESTRICT xr = xp + j * cols;
      for (size_t k = k0; k < k1; ++k) xT[k * P + j] = xr[k];
    }
    for (size_t k = k0; k < k1; ++k)
      for (size_t j = nt; j < P; ++j) xT[k * P + j] = 0.0f;
  }
}

// tile[r*P + v*N + lane] = sum_k wr[r][k] * xT[k*P + v*N + lane] for r < kR, v < kV.
template <size_t kV>
HWY_NOINLINE void OuterTile(const float* const* HWY_RESTRICT wr, size_t cols, const float* HWY_RESTRICT xT, size_t P,
                            float* HWY_RESTRICT tile) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const float* w[kOuterR];
  for (size_t r = 0; r < kOuterR; ++r) w[r] = wr[r];
  VF acc[kOuterR][kV];
  for (size_t r = 0; r < kOuterR; ++r)
    for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::Zero(df);
  for (size_t k = 0; k < cols; ++k) {
    const float* HWY_RESTRICT xk = xT + k * P;
    VF xv[kV];
    for (size_t v = 0; v < kV; ++v) xv[v] = hn::Load(df, xk + v * N);
    for (size_t r = 0; r < kOuterR; ++r) {
      const VF wb = hn::Set(df, w[r][k]);
      for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::MulAdd(wb, xv[v], acc[r][v]);
    }
  }
  for (size_t r = 0; r < kOuterR; ++r)
    for (size_t v = 0; v < kV; ++v) hn::Store(acc[r][v], df, tile + r * P + v * N);
}

// Converts one weight row to fp32.
template <typename WT>
void RowToF32(const WT* HWY_RESTRICT w, size_t cols, float* HWY_RESTRICT out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t k = 0;
  for (; k + N <= cols; k += N) hn::StoreU(LoadW(df, w + k), df, out + k);
  for (; k < cols; ++k) out[k] = ScalarW(w + k);
}

// Rows [r0, r1) against all tokens, using the packed panels xT (n_panels × cols × P floats).
template <typename WT>
void OuterRange(const WT* HWY_RESTRICT W, size_t rows, size_t cols, const float* HWY_RESTRICT xT, size_t n_tokens,
                size_t P, float* HWY_RESTRICT y, size_t r0, size_t r1) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t n_panels = (n_tokens + P - 1) / P;
  const size_t panel_floats = cols * P;
  const size_t panels_per_block = std::max<size_t>(1, kPanelBlockBytes / (panel_floats * sizeof(float)));
  constexpr bool kIsF32 = std::is_same_v<WT, float>;
  hwy::AlignedFreeUniquePtr<float[]> conv = hwy::AllocateAligned<float>(kIsF32 ? 1 : kOuterR * cols);
  hwy::AlignedFreeUniquePtr<float[]> tile = hwy::AllocateAligned<float>(kOuterR * P);
  const float* wr[kOuterR];

  for (size_t pb = 0; pb < n_panels; pb += panels_per_block) {
    const size_t pe = std::min(n_panels, pb + panels_per_block);
    for (size_t rb = r0; rb < r1; rb += kOuterR) {
      const size_t nr = std::min(kOuterR, r1 - rb);
      // Rows past the end repeat the last real row; their results are discarded.
      for (size_t i = 0; i < kOuterR; ++i) {
        const size_t ri = rb + std::min(i, nr - 1);
        if constexpr (kIsF32) {
          wr[i] = W + ri * cols;
        } else {
          if (i < nr) RowToF32(W + ri * cols, cols, conv.get() + i * cols);
          wr[i] = conv.get() + std::min(i, nr - 1) * cols;
        }
      }
      for (size_t p = pb; p < pe; ++p) {
        const size_t t0 = p * P;
        const size_t nt = std::min(P, n_tokens - t0);
        const float* xp = xT + p * panel_floats;
        switch ((nt + N - 1) / N) {
          case 1:
            OuterTile<1>(wr, cols, xp, P, tile.get());
            break;
          case 2:
            OuterTile<2>(wr, cols, xp, P, tile.get());
            break;
          default:
            OuterTile<kOuterV>(wr, cols, xp, P, tile.get());
            break;
        }
        for (size_t t = 0; t < nt; ++t) {
          float* yt = y + (t0 + t) * rows + rb;
          for (size_t i = 0; i < nr; ++i) yt[i] = tile[i * P + t];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

template <typename WT>
void MatmulT(ThreadPool& pool, const WT* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y) {
  if (rows == 0 || n_tokens == 0) return;
  if (cols == 0) {
    std::fill(y, y + rows * n_tokens, 0.0f);
    return;
  }
  if (n_tokens < kOuterMinTokens) {
    pool.parallel_for(rows, 16,
                      [&](size_t r0, size_t r1) HWY_ATTR { DotRange(W, rows, cols, x, n_tokens, y, r0, r1); });
    return;
  }
  const DF df;
  const size_t P = kOuterV * hn::Lanes(df);
  const size_t n_panels = (n_tokens + P - 1) / P;
  // The packed activations live in a per-calling-thread buffer that only grows: allocating it afresh
  // each call costs page faults comparable to the packing itself.
  thread_local hwy::AlignedFreeUniquePtr<float[]> xT_buf;
  thread_local size_t xT_capacity = 0;
  const size_t xT_floats = n_panels * cols * P;
  if (xT_capacity < xT_floats) {
    xT_buf = hwy::AllocateAligned<float>(xT_floats);
    xT_capacity = xT_floats;
  }
  float* xTp = xT_buf.get();
  pool.parallel_for(n_panels, 1, [&](size_t p0, size_t p1) HWY_ATTR {
    for (size_t p = p0; p < p1; ++p) PackPanel(x, n_tokens, cols, P, p, xTp + p * cols * P);
  });
  const size_t grain = 2 * kOuterR;
  pool.parallel_for(rows, grain,
                    [&](size_t r0, size_t r1) HWY_ATTR { OuterRange(W, rows, cols, xTp, n_tokens, P, y, r0, r1); });
}

void MatmulImpl(ThreadPool& pool, WeightType wt, const void* W, size_t rows, size_t cols, const float* x,
                size_t n_tokens, float* y) {
  switch (wt) {
    case WeightType::F32:
      return MatmulT(pool, static_cast<const float*>(W), rows, cols, x, n_tokens, y);
    case WeightType::F16:
      return MatmulT(pool, static_cast<const hwy::float16_t*>(W), rows, cols, x, n_tokens, y);
    case WeightType::BF16:
      return MatmulT(pool, static_cast<const hwy::bfloat16_t*>(W), rows, cols, x, n_tokens, y);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(MatmulImpl);

void matmul(ThreadPool& pool, WeightType wt, const void* W, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y) {
  HWY_DYNAMIC_DISPATCH(MatmulImpl)(pool, wt, W, rows, cols, x, n_tokens, y);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
