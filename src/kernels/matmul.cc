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
// * Tile form (decode on DenseLayout::Tiles, ops.h): per 32-row group, for each k one line of 32 weights
//   times a broadcast x[k], accumulated in 32/N vectors per token: the group is one sequential stream and
//   there is nothing to sum across lanes. Threads split the groups; the tail rows use the dot form.
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
// Tile form (decode on DenseLayout::Tiles).

constexpr size_t kTR = kDenseTileRows;
// Tokens per call of TileDot: 32/N accumulators per token plus one weight vector must fit the register file,
// and single tokens unroll k by 2 to keep >= 4 independent FMA chains (AVX-512: 2 vectors per k).
template <size_t kN>
constexpr size_t TileMaxTokens() {
  constexpr size_t per_token = kTR / kN < 1 ? 1 : kTR / kN;
  constexpr size_t t = (kNumRegs / 2) / per_token;
  return t < 1 ? 1 : (t > 4 ? 4 : t);
}

// y[t*ldy + i] = sum_k tile[k*32 + i] * x[t*cols + k] for t < kT, i < 32 (tile: one group, k-major).
template <size_t kT, typename WT>
HWY_INLINE void TileDot(const WT* HWY_RESTRICT tile, size_t cols, const float* HWY_RESTRICT x, float* HWY_RESTRICT y,
                        size_t ldy) {
  const DF df;
  constexpr size_t kN = hn::MaxLanes(DF());
  constexpr size_t kV = kTR / kN;  // vectors per line of 32 weights
  constexpr size_t kU = kT == 1 ? 2 : 1;
  VF acc[kU][kT][kV];
  for (size_t u = 0; u < kU; ++u)
    for (size_t t = 0; t < kT; ++t)
      for (size_t v = 0; v < kV; ++v) acc[u][t][v] = hn::Zero(df);
  size_t k = 0;
  for (; k + kU <= cols; k += kU) {
    for (size_t u = 0; u < kU; ++u) {
      const WT* HWY_RESTRICT line = tile + (k + u) * kTR;
      VF xb[kT];
      for (size_t t = 0; t < kT; ++t) xb[t] = hn::Set(df, x[t * cols + k + u]);
      for (size_t v = 0; v < kV; ++v) {
        const VF wv = LoadW(df, line + v * kN);
        for (size_t t = 0; t < kT; ++t) acc[u][t][v] = hn::MulAdd(wv, xb[t], acc[u][t][v]);
      }
    }
  }
  for (; k < cols; ++k) {
    const WT* HWY_RESTRICT line = tile + k * kTR;
    for (size_t t = 0; t < kT; ++t) {
      const VF xb = hn::Set(df, x[t * cols + k]);
      for (size_t v = 0; v < kV; ++v) acc[0][t][v] = hn::MulAdd(LoadW(df, line + v * kN), xb, acc[0][t][v]);
    }
  }
  for (size_t t = 0; t < kT; ++t)
    for (size_t v = 0; v < kV; ++v) {
      for (size_t u = 1; u < kU; ++u) acc[0][t][v] = hn::Add(acc[0][t][v], acc[u][t][v]);
      hn::StoreU(acc[0][t][v], df, y + t * ldy + v * kN);
    }
}

// Row groups [g0, g1) against all tokens, in chunks of at most TileMaxTokens; the group stays in L1/L2 across
// chunks only when it is small, so decode (one chunk) is the case this is built for.
template <typename WT>
void TileRange(const WT* HWY_RESTRICT W, size_t rows, size_t cols, const float* HWY_RESTRICT x, size_t n_tokens,
               float* HWY_RESTRICT y, size_t g0, size_t g1) {
  constexpr size_t kMaxT = TileMaxTokens<hn::MaxLanes(DF())>();
  for (size_t g = g0; g < g1; ++g) {
    const WT* tile = W + g * kTR * cols;
    float* yg = y + g * kTR;
    size_t t = 0;
    for (; t + kMaxT <= n_tokens; t += kMaxT) TileDot<kMaxT>(tile, cols, x + t * cols, yg + t * rows, rows);
    switch (n_tokens - t) {
      case 3:
        if constexpr (kMaxT > 3) TileDot<3>(tile, cols, x + t * cols, yg + t * rows, rows);
        break;
      case 2:
        if constexpr (kMaxT > 2) TileDot<2>(tile, cols, x + t * cols, yg + t * rows, rows);
        break;
      case 1:
        if constexpr (kMaxT > 1) TileDot<1>(tile, cols, x + t * cols, yg + t * rows, rows);
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

// tile[r*P + v*N + lane] = sum_k w(r, k) * xT[k*P + v*N + lane] for r < kR, v < kV, where w(r, k) is
// wr[r][k] (kKStride 0: one pointer per row) or wr[0][k*kKStride + r] (a k-major block of rows).
template <size_t kV, size_t kKStride>
HWY_NOINLINE void OuterTile(const float* const* HWY_RESTRICT wr, size_t cols, const float* HWY_RESTRICT xT, size_t P,
                            float* HWY_RESTRICT tile) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const float* w[kOuterR];
  for (size_t r = 0; r < kOuterR; ++r) w[r] = kKStride == 0 ? wr[r] : wr[0] + r;
  VF acc[kOuterR][kV];
  for (size_t r = 0; r < kOuterR; ++r)
    for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::Zero(df);
  for (size_t k = 0; k < cols; ++k) {
    const float* HWY_RESTRICT xk = xT + k * P;
    VF xv[kV];
    for (size_t v = 0; v < kV; ++v) xv[v] = hn::Load(df, xk + v * N);
    for (size_t r = 0; r < kOuterR; ++r) {
      const VF wb = hn::Set(df, w[r][kKStride == 0 ? k : k * kKStride]);
      for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::MulAdd(wb, xv[v], acc[r][v]);
    }
  }
  for (size_t r = 0; r < kOuterR; ++r)
    for (size_t v = 0; v < kV; ++v) hn::Store(acc[r][v], df, tile + r * P + v * N);
}

// Rows [rb, rb + nr) (nr <= kOuterR, weights as OuterTile reads them) against token panels [pb, pe).
template <size_t kKStride>
void OuterPanels(const float* const* wr, size_t cols, const float* HWY_RESTRICT xT, size_t n_tokens, size_t P,
                 size_t pb, size_t pe, size_t rows, size_t rb, size_t nr, float* HWY_RESTRICT tile,
                 float* HWY_RESTRICT y) {
  const size_t N = hn::Lanes(DF());
  for (size_t p = pb; p < pe; ++p) {
    const size_t t0 = p * P;
    const size_t nt = std::min(P, n_tokens - t0);
    const float* xp = xT + p * cols * P;
    switch ((nt + N - 1) / N) {
      case 1:
        OuterTile<1, kKStride>(wr, cols, xp, P, tile);
        break;
      case 2:
        OuterTile<2, kKStride>(wr, cols, xp, P, tile);
        break;
      default:
        OuterTile<kOuterV, kKStride>(wr, cols, xp, P, tile);
        break;
    }
    for (size_t t = 0; t < nt; ++t) {
      float* yt = y + (t0 + t) * rows + rb;
      for (size_t i = 0; i < nr; ++i) yt[i] = tile[i * P + t];
    }
  }
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

// Token panels per block: their packed size fits kPanelBlockBytes.
size_t PanelsPerBlock(size_t cols, size_t P) {
  return std::max<size_t>(1, kPanelBlockBytes / (cols * P * sizeof(float)));
}

// Rows [r0, r1) of the row layout against all tokens, using the packed panels xT (n_panels × cols × P floats).
template <typename WT>
void OuterRange(const WT* HWY_RESTRICT W, size_t rows, size_t cols, const float* HWY_RESTRICT xT, size_t n_tokens,
                size_t P, float* HWY_RESTRICT y, size_t r0, size_t r1) {
  const size_t n_panels = (n_tokens + P - 1) / P;
  const size_t panels_per_block = PanelsPerBlock(cols, P);
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
      OuterPanels<0>(wr, cols, xT, n_tokens, P, pb, pe, rows, rb, nr, tile.get(), y);
    }
  }
}

// Row groups [g0, g1) of the tile layout against all tokens. Each group is converted to fp32 once, reading it
// front to back (one stream), into a scratch of 32/kOuterR row blocks, block b holding rows b*kOuterR ..
// b*kOuterR + kOuterR - 1 k-major (scratch[(b*cols + k)*kOuterR + i]), so that each block is a contiguous run
// for OuterTile; then every token panel passes the group. Measured at 128 tokens (2 threads, one matrix):
// 16-bit 0-14% faster than the row layout (which converts its rows again for every panel block); f32 5-10%
// slower (the row layout reads f32 rows in place, with no copy at all). Converting one row block at a time
// per panel block was 25-30% slower for f32.
template <typename WT>
void OuterRangeTiles(const WT* HWY_RESTRICT W, size_t rows, size_t cols, const float* HWY_RESTRICT xT,
                     size_t n_tokens, size_t P, float* HWY_RESTRICT y, size_t g0, size_t g1) {
  static_assert(kTR % kOuterR == 0, "row blocks must not straddle tiles");
  constexpr size_t kBlocks = kTR / kOuterR;
  const size_t n_panels = (n_tokens + P - 1) / P;
  const size_t panels_per_block = PanelsPerBlock(cols, P);
  hwy::AlignedFreeUniquePtr<float[]> conv = hwy::AllocateAligned<float>(kTR * cols);
  hwy::AlignedFreeUniquePtr<float[]> tile = hwy::AllocateAligned<float>(kOuterR * P);
  const hn::CappedTag<float, kOuterR> dc;
  const size_t Nc = hn::Lanes(dc);
  float* HWY_RESTRICT c = conv.get();

  for (size_t g = g0; g < g1; ++g) {
    const WT* HWY_RESTRICT group = W + g * kTR * cols;
    for (size_t k = 0; k < cols; ++k)
      for (size_t b = 0; b < kBlocks; ++b)
        for (size_t i = 0; i < kOuterR; i += Nc) {
          const WT* p = group + k * kTR + b * kOuterR + i;
          float* out = c + (b * cols + k) * kOuterR + i;
          if constexpr (std::is_same_v<WT, float>)
            hn::StoreU(hn::LoadU(dc, p), dc, out);
          else
            hn::StoreU(hn::PromoteTo(dc, hn::LoadU(hn::Rebind<WT, decltype(dc)>(), p)), dc, out);
        }
    for (size_t pb = 0; pb < n_panels; pb += panels_per_block) {
      const size_t pe = std::min(n_panels, pb + panels_per_block);
      for (size_t b = 0; b < kBlocks; ++b) {
        const float* wr[1] = {c + b * cols * kOuterR};
        OuterPanels<kOuterR>(wr, cols, xT, n_tokens, P, pb, pe, rows, g * kTR + b * kOuterR, kOuterR, tile.get(), y);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

template <typename WT>
void MatmulT(ThreadPool& pool, const WT* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y,
             DenseLayout layout) {
  if (rows == 0 || n_tokens == 0) return;
  if (cols == 0) {
    std::fill(y, y + rows * n_tokens, 0.0f);
    return;
  }
  // Tile layout: groups of 32 rows, then the tail rows in row layout (row r at W + r*cols either way).
  const size_t groups = layout == DenseLayout::Tiles ? rows / kTR : 0;
  const size_t tail0 = groups * kTR;
  if (n_tokens < kOuterMinTokens) {
    if (groups > 0)
      pool.parallel_for(groups, 1, [&](size_t g0, size_t g1) HWY_ATTR {
        TileRange(W, rows, cols, x, n_tokens, y, g0, g1);
      });
    if (tail0 < rows)
      pool.parallel_for(rows - tail0, 16, [&](size_t r0, size_t r1) HWY_ATTR {
        DotRange(W, rows, cols, x, n_tokens, y, tail0 + r0, tail0 + r1);
      });
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
  if (groups > 0)
    pool.parallel_for(groups, 1, [&](size_t g0, size_t g1) HWY_ATTR {
      OuterRangeTiles(W, rows, cols, xTp, n_tokens, P, y, g0, g1);
    });
  if (tail0 < rows)
    pool.parallel_for(rows - tail0, 2 * kOuterR, [&](size_t r0, size_t r1) HWY_ATTR {
      OuterRange(W, rows, cols, xTp, n_tokens, P, y, tail0 + r0, tail0 + r1);
    });
}

void MatmulImpl(ThreadPool& pool, WeightType wt, const void* W, size_t rows, size_t cols, const float* x,
                size_t n_tokens, float* y, DenseLayout layout) {
  switch (wt) {
    case WeightType::F32:
      return MatmulT(pool, static_cast<const float*>(W), rows, cols, x, n_tokens, y, layout);
    case WeightType::F16:
      return MatmulT(pool, static_cast<const hwy::float16_t*>(W), rows, cols, x, n_tokens, y, layout);
    case WeightType::BF16:
      return MatmulT(pool, static_cast<const hwy::bfloat16_t*>(W), rows, cols, x, n_tokens, y, layout);
  }
}

// The tile layout is measured faster for decode on AVX-512 (docs/kernels.md); elsewhere it is compiled and
// tested but not chosen, for want of a measurement.
bool UsesDenseTilesImpl() { return HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL; }

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(MatmulImpl);
HWY_EXPORT(UsesDenseTilesImpl);

void matmul(ThreadPool& pool, WeightType wt, const void* W, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y, DenseLayout layout) {
  HWY_DYNAMIC_DISPATCH(MatmulImpl)(pool, wt, W, rows, cols, x, n_tokens, y, layout);
}

bool matmul_uses_dense_tiles() { return HWY_DYNAMIC_DISPATCH(UsesDenseTilesImpl)(); }

void dense_rows_to_tiles(size_t esize, const void* src, size_t rows, size_t cols, void* dst, size_t g0, size_t g1) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t r = g0 * kDenseTileRows; r < std::min(rows, g1 * kDenseTileRows); ++r)
    for (size_t k = 0; k < cols; ++k)
      std::memcpy(d + dense_index(DenseLayout::Tiles, rows, cols, r, k) * esize, s + (r * cols + k) * esize, esize);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
