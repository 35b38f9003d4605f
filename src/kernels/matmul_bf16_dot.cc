// matmul_bf16_dot: prefill with bf16 weights AND bf16 activations, on AVX512-BF16 (`vdpbf16ps`: per fp32 lane,
// acc += a[2i]·b[2i] + a[2i+1]·b[2i+1] over bf16 pairs, products exact, sums in fp32). Twice the fp32 FMA
// rate of this CPU kind (bench --peak: 456 against 230 GFLOP/s), at the price of rounding the activations to
// bf16 at the matmul input, as llama.cpp does for BF16 tensors and as torchchat's bf16 precision computes.
// f16 weights take the same kernel: each line is rounded to bf16 when its group's pair lines are built (as
// ik_llama.cpp computes F16 prefill on CPUs with AVX512-BF16 but no AVX512-FP16).
//
// Layouts (comment per stage):
//   W   the dense tile layout (ops.h): 32-row groups, k-major (line k = the group's 32 rows at column k), then
//       the rows % 32 tail row-major.
//   xb  the activations rounded to bf16, one row of cp values per token, zero after the last column (cp even,
//       so that the pair (k, k+1) is one dword to broadcast).
//   wp  per group, a scratch of ceil(cols/2) pair lines of 128 bytes: pair line kp holds, for rows i = 0..31,
//       the dword (W[i][2kp], W[i][2kp+1]) in bf16; its two 64-byte halves are rows 0-15 and 16-31, one zmm each.
//       Built once per group (a vpermt2w per half from lines 2kp and 2kp+1, f16 lines first converted), reused
//       by every token.
//   register tile: 2 zmm of rows (32 rows) × kT tokens = 24 accumulators; per pair line 2 loads, kT
//       broadcast dwords and 2·kT vdpbf16ps.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "lowbit/error.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LOWBIT_BF16_DOT 1
#define LOWBIT_BF16_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#else
#define LOWBIT_BF16_DOT 0
#endif

namespace lowbit::kernels {

#if LOWBIT_BF16_DOT
namespace {

constexpr size_t kTR = kDenseTileRows;  // 32
constexpr int kT = 12;                  // tokens per register tile

// xb[t*cp + k] = bf16(x[t*cols + k]) (round to nearest even, as vcvtne2ps2bf16), zero for k >= cols.
LOWBIT_BF16_ATTR void ConvertActivations(const float* x, size_t n, size_t cols, size_t cp, uint16_t* xb) {
  for (size_t t = 0; t < n; ++t) {
    const float* xr = x + t * cols;
    uint16_t* o = xb + t * cp;
    size_t k = 0;
    for (; k + 32 <= cols; k += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + k + 16), _mm512_loadu_ps(xr + k));
      _mm512_storeu_si512(o + k, reinterpret_cast<__m512i>(v));
    }
    for (; k < cols; ++k) o[k] = f32_to_bf16_inline(xr[k]);
    for (; k < cp; ++k) o[k] = 0;
  }
}

// One line of a group (32 values) as bf16: f16 through fp32, rounded to nearest even (exact for f16 values that
// came from bf16).
template <bool kF16>
LOWBIT_BF16_ATTR __m512i LoadLine(const uint16_t* p) {
  if constexpr (kF16) {
    // (The zero-masked form: GCC 12 warns that the plain intrinsic's undefined source is uninitialized.)
    const __m512 lo = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 hi = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
    return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
  } else {
    return _mm512_loadu_si512(p);
  }
}

// wp for one full group (W at the group's first line): pair line kp from lines 2kp and 2kp+1 (a zero line past
// the last column).
template <bool kF16>
LOWBIT_BF16_ATTR void PairGroup(const uint16_t* g, size_t cols, uint16_t* wp) {
  alignas(64) uint16_t lo[32], hi[32];
  for (int i = 0; i < 16; ++i) {  // vpermt2w indices: 0-31 pick from line 2kp, 32-63 from line 2kp+1
    lo[2 * i] = static_cast<uint16_t>(i);
    lo[2 * i + 1] = static_cast<uint16_t>(32 + i);
    hi[2 * i] = static_cast<uint16_t>(16 + i);
    hi[2 * i + 1] = static_cast<uint16_t>(48 + i);
  }
  const __m512i ilo = _mm512_load_si512(lo), ihi = _mm512_load_si512(hi);
  for (size_t kp = 0; 2 * kp < cols; ++kp) {
    const __m512i a = LoadLine<kF16>(g + 2 * kp * kTR);
    const __m512i b = 2 * kp + 1 < cols ? LoadLine<kF16>(g + (2 * kp + 1) * kTR) : _mm512_setzero_si512();
    _mm512_storeu_si512(wp + kp * 2 * kTR, _mm512_permutex2var_epi16(a, ilo, b));
    _mm512_storeu_si512(wp + kp * 2 * kTR + kTR, _mm512_permutex2var_epi16(a, ihi, b));
  }
}

// wp for the nt < 32 tail rows (row-major, rows r0 .. r0+nt-1), zero rows after them.
template <bool kF16>
void PairTail(const uint16_t* W, size_t r0, size_t nt, size_t cols, uint16_t* wp) {
  for (size_t kp = 0; 2 * kp < cols; ++kp)
    for (size_t i = 0; i < kTR; ++i) {
      const uint16_t* row = W + (r0 + i) * cols;
      uint16_t* d = wp + kp * 2 * kTR + 2 * i;
      d[0] = i < nt ? (kF16 ? f16_to_bf16_inline(row[2 * kp]) : row[2 * kp]) : 0;
      d[1] = i < nt && 2 * kp + 1 < cols ? (kF16 ? f16_to_bf16_inline(row[2 * kp + 1]) : row[2 * kp + 1]) : 0;
    }
}

// y[t*ldy + i] = sum_kp dot(wp pair kp row i, xb[t] pair kp) for t < kN, i < nr (<= 32).
template <int kN>
LOWBIT_BF16_ATTR __attribute__((noinline)) void Tile(const uint16_t* wp, size_t npairs, const uint16_t* xb, size_t cp,
                                                      float* y, size_t ldy, size_t nr) {
  __m512 acc[2][kN];
  for (int v = 0; v < 2; ++v)
    for (int t = 0; t < kN; ++t) acc[v][t] = _mm512_setzero_ps();
  for (size_t kp = 0; kp < npairs; ++kp) {
    const __m512bh w0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(wp + kp * 2 * kTR));
    const __m512bh w1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(wp + kp * 2 * kTR + kTR));
    for (int t = 0; t < kN; ++t) {
      uint32_t pair;
      std::memcpy(&pair, xb + t * cp + 2 * kp, 4);
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
      acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xv);
      acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xv);
    }
  }
  const __mmask16 m0 = nr >= 16 ? 0xffff : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : static_cast<__mmask16>((1u << (nr - 16)) - 1);
  for (int t = 0; t < kN; ++t) {
    _mm512_mask_storeu_ps(y + t * ldy, m0, acc[0][t]);
    _mm512_mask_storeu_ps(y + t * ldy + 16, m1, acc[1][t]);
  }
}

template <int kN>
LOWBIT_BF16_ATTR void TileN(int n, const uint16_t* wp, size_t npairs, const uint16_t* xb, size_t cp, float* y,
                            size_t ldy, size_t nr) {
  if constexpr (kN > 0) {
    if (n == kN) return Tile<kN>(wp, npairs, xb, cp, y, ldy, nr);
    return TileN<kN - 1>(n, wp, npairs, xb, cp, y, ldy, nr);
  }
}

}  // namespace

bool matmul_bf16_dot_available(DenseLayout layout, WeightType wt) {
  if (wt == WeightType::F32) return false;
  static const bool ok = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return ok && layout == DenseLayout::Tiles;
}

void matmul_bf16_dot(ThreadPool& pool, WeightType wt, const uint16_t* W, DenseLayout layout, size_t rows,
                     size_t cols, const float* x, size_t n_tokens, float* y) {
  if (!matmul_bf16_dot_available(layout, wt))
    fail("matmul_bf16_dot: this CPU has no AVX512-BF16, or the weights are not 16-bit in the tile layout");
  if (rows == 0 || n_tokens == 0) return;
  if (cols == 0) {
    std::fill(y, y + rows * n_tokens, 0.0f);
    return;
  }
  // Row stride of xb: even, and not a multiple of 512 bytes: the register tile reads 12 token rows side by
  // side, and at a 4 KiB stride (cols = 2048) they all fall into one L1 set (measured 250-285 GFLOP/s against
  // 350 for cols = 5632).
  size_t cp = (cols + 1) / 2 * 2;
  if ((cp * 2) % 512 == 0) cp += 32;
  // Reused per calling thread, growing only (as matmul's packed panels).
  // (A thread_local named inside the lambdas would be each worker's own: pass the pointer.)
  thread_local std::vector<uint16_t> xb;
  if (xb.size() < n_tokens * cp) xb.resize(n_tokens * cp);
  uint16_t* xbp = xb.data();
  pool.parallel_for(n_tokens, 16, [&](size_t t0, size_t t1) {
    ConvertActivations(x + t0 * cols, t1 - t0, cols, cp, xbp + t0 * cp);
  });
  const size_t groups = (rows + kTR - 1) / kTR;  // the last one may be the partial tail
  pool.parallel_for(groups, 1, [&](size_t g0, size_t g1) {
    std::vector<uint16_t> wp((cols + 1) / 2 * 2 * kTR);
    for (size_t g = g0; g < g1; ++g) {
      const size_t r0 = g * kTR, nr = std::min(kTR, rows - r0);
      const bool f16 = wt == WeightType::F16;
      if (nr == kTR)
        f16 ? PairGroup<true>(W + r0 * cols, cols, wp.data()) : PairGroup<false>(W + r0 * cols, cols, wp.data());
      else
        f16 ? PairTail<true>(W, r0, nr, cols, wp.data()) : PairTail<false>(W, r0, nr, cols, wp.data());
      for (size_t t = 0; t < n_tokens; t += kT) {
        const int nt = static_cast<int>(std::min<size_t>(kT, n_tokens - t));
        TileN<kT>(nt, wp.data(), (cols + 1) / 2, xbp + t * cp, cp, y + t * rows + r0, rows, nr);
      }
    }
  });
}

#elif !defined(__aarch64__)  // (aarch64: kernels/matmul_bf16_mmla_neon.cc)

bool matmul_bf16_dot_available(DenseLayout, WeightType) { return false; }

void matmul_bf16_dot(ThreadPool&, WeightType, const uint16_t*, DenseLayout, size_t, size_t, const float*, size_t,
                     float*) {
  fail("matmul_bf16_dot: this build has no bf16 × bf16 kernel");
}

#endif

}  // namespace lowbit::kernels
