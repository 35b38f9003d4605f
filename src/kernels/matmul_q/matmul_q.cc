// matmul_q: packed groupwise-quantized weights × fp32 activations (see matmul_q.h for the op, quant/packed.h for
// the layout). Compiled once per SIMD target (Highway), dispatched at run time.
//
// Structure (every path is checked against ref.cc by matmul_q_test.cc, on every target):
//
// * DynamicInt8 (a8). Each token is quantized once per call (A8Acts: int8 xq, the block scales s, Σxq per block,
//   s repeated per int32 lane ("s8x") for the dot kernels, Σ_{b∈g} s_b·Σxq_b per group for the m term).
//   - AVX-512 (matmul_q_avx512-inl.h, compiled twice: plain AVX3 with vpmaddubsw + vpmaddwd, and with
//     VNNI + VBMI + GFNI when the CPU has them: vpdpbusd, and a vpermb + gf2p8affineqb bit-plane decode):
//     * Dot form (n_tokens < a8_outer_min_tokens (tuning.h), i.e. decode): a pair of blocks (64 codes) per zmm, decoded in
//       registers from the packed bytes (4-bit: nibbles in "nibble order", the activations permuted to
//       match); 4 rows × 1 token (2 × 2, 1 × 4) per tile share the activation loads; int32 lanes -> fp32 per
//       pair (the activation scale changes every block), d applied per group or folded into the scale.
//     * Outer-product form (prefill): 32 rows' codes are interleaved per 4 columns into a panel (16×16 dword
//       transposes), so that one vpdpbusd with a broadcast dword of a token's xq advances 16 rows × 4 columns;
//       a register tile of 32 rows × 4 tokens converts to fp32 once per 8 vpdpbusd (per block). Symmetric
//       weights fold the m term into the integer accumulators (start at −2^(bits−1)·Σxq).
//   - AVX2 (matmul_q_avx2-inl.h): the dot form, one block per ymm (vpmaddubsw + vpmaddwd).
//   - NEON (matmul_q_neon-inl.h): the dot form with sdot when the CPU has it (HWCAP_ASIMDDP), else vmull;
//     prefill with usmmla (2 rows × 2 tokens × 8 columns per instruction) when it has I8MM
//     (matmul_q_neon_i8mm-inl.h).
//   - Other targets, and group sizes that are not a multiple of 32 (16, 48, ...) on every target: portable
//     Highway code (codes unpacked to bytes, int32 products, a block split at group boundaries).
//
// * WeightOnly (fp32 math).
//   - Decode: AVX-512: one row at a time, 4-bit through a per-group 16-entry table of dequantized values
//     (vpermps), other widths as bytes converted to fp32 with d per group. Other targets: portable Highway.
//   - Prefill (n_tokens >= kWOOuterMinTokens): rows are dequantized to fp32 kOuterR at a time and multiplied
//     with token panels in an outer-product register tile, like kernels/matmul.cc's fp32 kernel.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/arm_features.h"
#include "kernels/half.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/tuning.h"
#include "lowbit/error.h"
#include "quant/row_tiles.h"

#ifndef LOWBIT_KERNELS_MATMUL_Q_SHARED_
#define LOWBIT_KERNELS_MATMUL_Q_SHARED_
namespace lowbit::kernels::matmul_q_detail {

// Quantized activations of all tokens of one call (DynamicInt8). nbp = n_blocks rounded up to even; the
// padding blocks have xq = 0, s = 0.
struct A8Acts {
  size_t n_tokens = 0, nb = 0, nbp = 0, ng = 0;
  // Nibble order (for the AVX-512 4-bit dot kernel): within each pair of blocks A, B, xq and s8x are
  // arranged as the decoded nibbles come out of a 32-byte load, [A0..15, B0..15, A16..31, B16..31], and
  // s8x as [sA×4, sB×4, sA×4, sB×4]. Otherwise natural order: [A0..31, B0..31], s8x [sA×8, sB×8].
  bool nibble_order = false;
  int8_t* xq = nullptr;     // [t][nbp * 32]
  float* s = nullptr;       // [t][nbp]
  int32_t* isum = nullptr;  // [t][nbp]      Σ xq of the block
  float* s8x = nullptr;     // [t][nbp * 8]  s repeated 8 times (one per int32 lane of a block's dot)
  float* gsum = nullptr;    // [t][ng]       Σ_{b in g} s_b · isum_b   (group_size % 32 == 0 only)

  const int8_t* xq_t(size_t t) const { return xq + t * nbp * 32; }
  const float* s_t(size_t t) const { return s + t * nbp; }
  const int32_t* isum_t(size_t t) const { return isum + t * nbp; }
  const float* s8x_t(size_t t) const { return s8x + t * nbp * 8; }
  const float* gsum_t(size_t t) const { return gsum + t * ng; }
  // A view of tokens [t0, t0 + n).
  A8Acts tokens(size_t t0, size_t n) const {
    A8Acts v = *this;
    v.n_tokens = n;
    v.xq += t0 * nbp * 32;
    v.s += t0 * nbp;
    v.isum += t0 * nbp;
    v.s8x += t0 * nbp * 8;
    v.gsum += t0 * ng;
    return v;
  }
  // fn(view, its outputs) for each block of tb tokens (tb = 0: one block); y is [token][rows].
  template <class Fn>
  void for_token_blocks(size_t tb, size_t rows, float* y, const Fn& fn) const {
    if (tb == 0) tb = n_tokens;
    for (size_t t0 = 0; t0 < n_tokens; t0 += tb) fn(tokens(t0, std::min(tb, n_tokens - t0)), y + t0 * rows);
  }
};

// WeightOnly activations: x itself and its per-group sums.
struct WOActs {
  const float* x = nullptr;  // [t][cols]
  float* xg = nullptr;       // [t][ng]   Σ_{k in g} x_k
  size_t cols = 0, ng = 0;
};

extern std::atomic<bool> g_allow_vnni;
extern std::atomic<bool> g_allow_i8mm;

}  // namespace lowbit::kernels::matmul_q_detail
#endif  // LOWBIT_KERNELS_MATMUL_Q_SHARED_

// clang-format off
#include "kernels/hwy_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_q/matmul_q.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
// clang-format on

// Everything per target lives in matmul_q_detail::N_<target>, apart from kernels/matmul.cc's N_<target>.
HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels::matmul_q_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
    HWY_TARGET == HWY_SCALAR
constexpr size_t kNumRegs = 16;
#else
constexpr size_t kNumRegs = 32;
#endif

// WeightOnly outer-product form: rows per tile, token vectors per tile (= per panel), like kernels/matmul.cc.
constexpr size_t kOuterR = kNumRegs >= 32 ? 8 : 4;
constexpr size_t kOuterV = 3;
constexpr size_t kWOOuterMinTokens = 8;
constexpr size_t kPanelBlockBytes = 512 * 1024;
// The a8 outer-product threshold, the prefill token block and the rows per task of the dot forms are run-time
// parameters (kernels/tuning.h: predicted from the caches, or measured by `lowbit tune`).

// A buffer per thread and use that only grows (allocating afresh per call costs page faults).
template <typename T>
struct Scratch {
  hwy::AlignedFreeUniquePtr<T[]> buf;
  size_t cap = 0;
  T* get(size_t n) {
    if (n > cap) {
      buf = hwy::AllocateAligned<T>(n);
      cap = n;
    }
    return buf.get();
  }
};

// ---------------------------------------------------------------------------------------------------------
// Scales, code unpacking, activation quantization (portable Highway code, used by every target).

void HalvesToFloats(const uint16_t* HWY_RESTRICT h, size_t n, float* HWY_RESTRICT out) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(h + i))), df, out + i);
  for (; i < n; ++i) out[i] = half_to_f32(h[i]);
}

// d[g] and mz[g] = the group's additive term per unit of Σx (m, or -2^(bits-1)·d when symmetric).
void RowScales(const PackedMatrix& W, size_t r, float* HWY_RESTRICT d, float* HWY_RESTRICT mz) {
  const size_t ng = W.desc.n_groups();
  HalvesToFloats(W.scales + r * ng, ng, d);
  if (W.desc.has_zeros) {
    HalvesToFloats(W.mins + r * ng, ng, mz);
  } else {
    const float zero = -static_cast<float>(1 << (W.desc.bits - 1));
    for (size_t g = 0; g < ng; ++g) mz[g] = zero * d[g];
  }
}

// One row's codes as bytes, n_blocks * 32 of them (natural order).
void UnpackRowGeneric(const PackedDesc& desc, const uint8_t* HWY_RESTRICT codes, uint8_t* HWY_RESTRICT out) {
  const size_t nb = desc.n_blocks();
  if (desc.bits == 8) {
    std::memcpy(out, codes, nb * kPackBlock);
    return;
  }
  if (desc.bits == 4) {
    const hn::CappedTag<uint8_t, 16> d16;
    if (hn::Lanes(d16) == 16) {
      const auto mask = hn::Set(d16, 0x0F);
      for (size_t b = 0; b < nb; ++b) {
        const auto v = hn::LoadU(d16, codes + 16 * b);
        hn::StoreU(hn::And(v, mask), d16, out + 32 * b);
        hn::StoreU(hn::ShiftRight<4>(v), d16, out + 32 * b + 16);
      }
      return;
    }
  } else {
    const hn::CappedTag<uint8_t, 32> d32;
    const size_t N = hn::Lanes(d32);
    if (N >= 8) {
      const size_t bb = desc.block_bytes();
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = codes + b * bb;
        for (size_t c = 0; c < kPackBlock; c += N) {
          auto q = hn::Zero(d32);
          for (int p = 0; p < desc.bits; ++p) {
            const auto m = hn::LoadMaskBits(d32, blk + 4 * p + c / 8);
            q = hn::Or(q, hn::IfThenElseZero(m, hn::Set(d32, static_cast<uint8_t>(1u << p))));
          }
          hn::StoreU(q, d32, out + 32 * b + c);
        }
      }
      return;
    }
  }
  unpack_row_codes(desc, codes, out);
}

// One full block of 32 activations, bit-identical to ref::quantize_activations. Returns Σ xq.
int32_t QuantizeBlock(const float* HWY_RESTRICT x, int8_t* HWY_RESTRICT xq, float* HWY_RESTRICT s) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, decltype(di)> d8;
  const size_t N = hn::Lanes(df);
  auto vmax = hn::Zero(df);
  for (size_t j = 0; j < kPackBlock; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + j)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  *s = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  const auto vid = hn::Set(df, id);
  auto vsum = hn::Zero(di);
  for (size_t j = 0; j < kPackBlock; j += N) {
    const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, x + j), vid));
    vsum = hn::Add(vsum, q);
    hn::StoreU(hn::DemoteTo(d8, q), d8, xq + j);
  }
  return hn::GetLane(hn::SumOfLanes(di, vsum));
}

// Σ p[0 .. n): whole vectors summed lane-wise, then the tail in order (the per-group sums of both modes).
HWY_INLINE float SumFloats(const float* HWY_RESTRICT p, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t k = 0;
  float sum = 0.0f;
  if (n >= N) {
    auto v = hn::Zero(df);
    for (; k + N <= n; k += N) v = hn::Add(v, hn::LoadU(df, p + k));
    sum = hn::GetLane(hn::SumOfLanes(df, v));
  }
  for (; k < n; ++k) sum += p[k];
  return sum;
}

// Quantizes one token into nbp blocks (the blocks past n_blocks are zero).
void QuantizeToken(const float* HWY_RESTRICT x, size_t cols, size_t nbp, int8_t* HWY_RESTRICT xq,
                   float* HWY_RESTRICT s, int32_t* HWY_RESTRICT isum) {
  const size_t full = cols / kPackBlock;
  for (size_t b = 0; b < full; ++b) isum[b] = QuantizeBlock(x + b * kPackBlock, xq + b * kPackBlock, s + b);
  size_t b = full;
  if (cols % kPackBlock != 0) {
    ref::quantize_activations(x + b * kPackBlock, cols % kPackBlock, xq + b * kPackBlock, s + b, isum + b);
    ++b;
  }
  for (; b < nbp; ++b) {
    std::memset(xq + b * kPackBlock, 0, kPackBlock);
    s[b] = 0.0f;
    isum[b] = 0;
  }
}


#if HWY_TARGET == HWY_AVX3
// QuantizeToken plus the layout work of PrepareA8 (nibble order, s8x) in one AVX-512 pass per block; the
// quantization itself is bit-identical to ref::quantize_activations (the same float operations; cvtps2dq
// rounds half to even like nearbyint). A short last block is read with a masked load (zeros, as in ref).
void QuantizeTokenA8_512(const float* HWY_RESTRICT x, size_t cols, const A8Acts& a, size_t t) {
  int8_t* xq = a.xq + t * a.nbp * 32;
  float* s = a.s + t * a.nbp;
  int32_t* isum = a.isum + t * a.nbp;
  float* s8x = a.s8x + t * a.nbp * 8;
  const size_t nb = (cols + kPackBlock - 1) / kPackBlock;
  for (size_t b = 0; b < a.nbp; ++b) {
    __m128i q0 = _mm_setzero_si128(), q1 = _mm_setzero_si128();
    float sb = 0.0f;
    int32_t sum = 0;
    if (b < nb) {
      const float* xb = x + b * kPackBlock;
      const size_t n = std::min(kPackBlock, cols - b * kPackBlock);
      __m512 v0, v1;
      if (n == kPackBlock) {
        v0 = _mm512_loadu_ps(xb);
        v1 = _mm512_loadu_ps(xb + 16);
      } else {
        const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1);
        const __mmask16 m1 = static_cast<__mmask16>(n > 16 ? (1u << (n - 16)) - 1 : 0u);
        v0 = _mm512_maskz_loadu_ps(m0, xb);
        v1 = _mm512_maskz_loadu_ps(m1, xb + 16);
      }
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
      sb = amax / 127.0f;
      const __m512 vid = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
      const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
      const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
      q0 = _mm512_cvtsepi32_epi8(i0);
      q1 = _mm512_cvtsepi32_epi8(i1);
      sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
    s[b] = sb;
    isum[b] = sum;
    const __m128 sv = _mm_set1_ps(sb);
    if (a.nibble_order) {
      // Pair i = b / 2: [A0..15, B0..15, A16..31, B16..31]; s8x [sA×4, sB×4, sA×4, sB×4].
      const size_t base = 64 * (b / 2) + 16 * (b % 2);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + base), q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + base + 32), q1);
      float* sp = s8x + 16 * (b / 2) + 4 * (b % 2);
      _mm_storeu_ps(sp, sv);
      _mm_storeu_ps(sp + 8, sv);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + 32 * b), q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + 32 * b + 16), q1);
      _mm_storeu_ps(s8x + 8 * b, sv);
      _mm_storeu_ps(s8x + 8 * b + 4, sv);
    }
  }
}
#endif

// Fills tokens [t0, t1) of a (everything but the pointers and sizes, which the caller set).
void PrepareA8(const float* HWY_RESTRICT x, size_t cols, size_t group_size, const A8Acts& a, size_t t0,
               size_t t1) {
  const size_t gb = group_size / kPackBlock;
  for (size_t t = t0; t < t1; ++t) {
    float* s = a.s + t * a.nbp;
    int32_t* isum = a.isum + t * a.nbp;
#if HWY_TARGET == HWY_AVX3
    QuantizeTokenA8_512(x + t * cols, cols, a, t);
#else
    // (nibble_order is only used by the AVX-512 kernels.)
    QuantizeToken(x + t * cols, cols, a.nbp, a.xq + t * a.nbp * 32, s, isum);
    float* s8x = a.s8x + t * a.nbp * 8;
    for (size_t b = 0; b < a.nbp; ++b)
      for (size_t j = 0; j < 8; ++j) s8x[b * 8 + j] = s[b];
#endif
    if (group_size % kPackBlock == 0) {
      // gsum[g] = Σ_{b in g} s_b · isum_b: the products vectorized (into gsum itself when gb = 1).
      float* gsum = a.gsum + t * a.ng;
      thread_local Scratch<float> sxs_buf;
      float* sxs = gb == 1 ? gsum : sxs_buf.get(a.nb);
      const DF df;
      const hn::RebindToSigned<DF> di;
      const size_t N = hn::Lanes(df), nb = a.nb;
      size_t b = 0;
      for (; b + N <= nb; b += N)
        hn::StoreU(hn::Mul(hn::LoadU(df, s + b), hn::ConvertTo(df, hn::LoadU(di, isum + b))), df, sxs + b);
      for (; b < nb; ++b) sxs[b] = s[b] * static_cast<float>(isum[b]);
      if (gb > 1) {
        for (size_t g = 0; g < a.ng; ++g) gsum[g] = SumFloats(sxs + g * gb, gb);
      }
    }
  }
}

void QuantizeActivationsImpl(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums) {
  const size_t nb = (cols + kPackBlock - 1) / kPackBlock;
#if HWY_TARGET == HWY_AVX3
  // The kernel's own quantizer (what matmul_q uses on this target), through a one-token A8Acts view.
  thread_local Scratch<float> s8x_buf;
  A8Acts a;
  a.n_tokens = 1;
  a.nb = a.nbp = nb;
  a.xq = xq;
  a.s = scales;
  a.isum = sums;
  a.s8x = s8x_buf.get(nb * 8);
  QuantizeTokenA8_512(x, cols, a, 0);
#else
  QuantizeToken(x, cols, nb, xq, scales, sums);
#endif
}

void PrepareWO(const float* HWY_RESTRICT x, size_t group_size, const WOActs& a, size_t t0, size_t t1) {
  for (size_t t = t0; t < t1; ++t) {
    const float* xt = x + t * a.cols;
    float* xg = a.xg + t * a.ng;
    for (size_t g = 0; g < a.ng; ++g) xg[g] = SumFloats(xt + g * group_size, group_size);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Portable a8 dot form.

// Σ_{j<32} q_j · xq_j.
HWY_INLINE int32_t DotBlock(const uint8_t* HWY_RESTRICT q, const int8_t* HWY_RESTRICT x) {
  const hn::CappedTag<int32_t, 32> di;
  const hn::Rebind<uint8_t, decltype(di)> du8;
  const hn::Rebind<int8_t, decltype(di)> di8;
  const size_t N = hn::Lanes(di);
  auto sum = hn::Zero(di);
  for (size_t k = 0; k < kPackBlock; k += N) {
    const auto a = hn::PromoteTo(di, hn::LoadU(du8, q + k));
    const auto b = hn::PromoteTo(di, hn::LoadU(di8, x + k));
    sum = hn::Add(sum, hn::Mul(a, b));
  }
  return hn::GetLane(hn::SumOfLanes(di, sum));
}

// Rows [r0, r1) for all tokens; q is a per-thread row of codes as bytes.
void A8RowsGeneric(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* HWY_RESTRICT y) {
  const PackedDesc& desc = W.desc;
  const size_t rows = desc.rows, ng = desc.n_groups(), gs = desc.group_size;
  thread_local Scratch<uint8_t> q_buf;
  thread_local Scratch<float> f_buf;
  uint8_t* q = q_buf.get(a.nbp * kPackBlock);
  float* d = f_buf.get(2 * ng);
  float* mz = d + ng;
  std::memset(q + a.nb * kPackBlock, 0, (a.nbp - a.nb) * kPackBlock);
  for (size_t r = r0; r < r1; ++r) {
    UnpackRowGeneric(desc, W.row_codes(r), q);
    RowScales(W, r, d, mz);
    for (size_t t = 0; t < a.n_tokens; ++t) {
      const int8_t* xq = a.xq_t(t);
      const float* s = a.s_t(t);
      float acc = 0.0f;
      if (gs % kPackBlock == 0) {
        const size_t gb = gs / kPackBlock;
        const float* gsum = a.gsum_t(t);
        for (size_t g = 0; g < ng; ++g) {
          float accg = 0.0f;
          for (size_t b = g * gb; b < (g + 1) * gb; ++b)
            accg += s[b] * static_cast<float>(DotBlock(q + b * kPackBlock, xq + b * kPackBlock));
          acc += d[g] * accg + mz[g] * gsum[g];
        }
      } else {
        // A group may start or end inside a block: sum each (group, block) piece separately.
        for (size_t g = 0; g < ng; ++g) {
          for (size_t k0 = g * gs; k0 < (g + 1) * gs;) {
            const size_t b = k0 / kPackBlock, k1 = std::min((g + 1) * gs, (b + 1) * kPackBlock);
            int32_t dot = 0, sx = 0;
            for (size_t k = k0; k < k1; ++k) {
              dot += static_cast<int32_t>(q[k]) * xq[k];
              sx += xq[k];
            }
            acc += s[b] * (d[g] * static_cast<float>(dot) + mz[g] * static_cast<float>(sx));
            k0 = k1;
          }
        }
      }
      y[t * rows + r] = acc;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// WeightOnly dot form: one row's codes as bytes (q) against up to n_tokens tokens.

void WORowDot(const uint8_t* HWY_RESTRICT q, const float* HWY_RESTRICT d, const float* HWY_RESTRICT mz,
              const WOActs& a, size_t group_size, size_t n_tokens, float* HWY_RESTRICT y, size_t ldy) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const size_t N = hn::Lanes(df), ng = a.ng, cols = a.cols;
  for (size_t t = 0; t < n_tokens; ++t) {
    const float* x = a.x + t * cols;
    const float* xg = a.xg + t * ng;
    float sum = 0.0f;
    if (group_size % N == 0) {
      // Two accumulator chains per group when the group allows it.
      auto acc = hn::Zero(df);
      for (size_t g = 0; g < ng; ++g) {
        const size_t k0 = g * group_size, k1 = k0 + group_size;
        auto a0 = hn::Zero(df), a1 = hn::Zero(df);
        size_t k = k0;
        for (; k + 2 * N <= k1; k += 2 * N) {
          a0 = hn::MulAdd(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(du8, q + k))), hn::LoadU(df, x + k), a0);
          a1 = hn::MulAdd(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(du8, q + k + N))),
                          hn::LoadU(df, x + k + N), a1);
        }
        for (; k < k1; k += N)
          a0 = hn::MulAdd(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(du8, q + k))), hn::LoadU(df, x + k), a0);
        acc = hn::MulAdd(hn::Set(df, d[g]), hn::Add(a0, a1), acc);
      }
      sum = hn::GetLane(hn::SumOfLanes(df, acc));
    } else {
      for (size_t g = 0; g < ng; ++g) {
        float dot = 0.0f;
        for (size_t k = g * group_size; k < (g + 1) * group_size; ++k) dot += static_cast<float>(q[k]) * x[k];
        sum += d[g] * dot;
      }
    }
    // The m term: Σ_g mz_g · Σ_{k in g} x_k.
    size_t g = 0;
    if (ng >= N) {
      auto vm = hn::Zero(df);
      for (; g + N <= ng; g += N) vm = hn::MulAdd(hn::LoadU(df, mz + g), hn::LoadU(df, xg + g), vm);
      sum += hn::GetLane(hn::SumOfLanes(df, vm));
    }
    for (; g < ng; ++g) sum += mz[g] * xg[g];
    y[t * ldy] = sum;
  }
}

using UnpackFn = void (*)(const PackedDesc&, const uint8_t*, uint8_t*);

void WORowsDot(const PackedMatrix& W, const WOActs& a, size_t n_tokens, size_t r0, size_t r1, float* y,
               UnpackFn unpack) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups();
  thread_local Scratch<uint8_t> q_buf;
  thread_local Scratch<float> f_buf;
  uint8_t* q = q_buf.get(desc.n_blocks() * kPackBlock + 64);
  float* d = f_buf.get(2 * ng);
  float* mz = d + ng;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* codes = W.row_codes(r);
    if (desc.bits != 8) {
      unpack(desc, codes, q);
      codes = q;
    }
    RowScales(W, r, d, mz);
    WORowDot(codes, d, mz, a, desc.group_size, n_tokens, y + r, desc.rows);
  }
}

// ---------------------------------------------------------------------------------------------------------
// WeightOnly outer-product form (prefill), as in kernels/matmul.cc: token panels xT[k][P] of P = kOuterV
// vectors of tokens; kOuterR dequantized fp32 rows; per k, kOuterV panel loads and one broadcast per row.

void PackPanel(const float* HWY_RESTRICT x, size_t n_tokens, size_t cols, size_t P, size_t p,
               float* HWY_RESTRICT xT) {
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

template <size_t kV>
HWY_NOINLINE void OuterTile(const float* const* HWY_RESTRICT wr, size_t cols, const float* HWY_RESTRICT xT,
                            size_t P, float* HWY_RESTRICT tile) {
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

// w[k] = d_g · q_k + m_g for one row (q: the row's codes as bytes).
void DequantRow(const uint8_t* HWY_RESTRICT q, const float* HWY_RESTRICT d, const float* HWY_RESTRICT mz,
                size_t cols, size_t group_size, float* HWY_RESTRICT w) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const size_t N = hn::Lanes(df);
  for (size_t g = 0; g < cols / group_size; ++g) {
    const size_t k0 = g * group_size, k1 = k0 + group_size;
    const auto vd = hn::Set(df, d[g]), vm = hn::Set(df, mz[g]);
    size_t k = k0;
    for (; k + N <= k1; k += N)
      hn::StoreU(hn::MulAdd(vd, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(du8, q + k))), vm), df, w + k);
    for (; k < k1; ++k) w[k] = d[g] * static_cast<float>(q[k]) + mz[g];
  }
}

void WOOuterRange(const PackedMatrix& W, const float* HWY_RESTRICT xT, size_t n_tokens, size_t P,
                  float* HWY_RESTRICT y, size_t r0, size_t r1, UnpackFn unpack) {
  const PackedDesc& desc = W.desc;
  const DF df;
  const size_t N = hn::Lanes(df), rows = desc.rows, cols = desc.cols, ng = desc.n_groups();
  const size_t n_panels = (n_tokens + P - 1) / P;
  const size_t panel_floats = cols * P;
  const size_t panels_per_block = std::max<size_t>(1, kPanelBlockBytes / (panel_floats * sizeof(float)));
  thread_local Scratch<float> conv_buf, tile_buf, f_buf;
  thread_local Scratch<uint8_t> q_buf;
  float* conv = conv_buf.get(kOuterR * cols);
  float* tile = tile_buf.get(kOuterR * P);
  float* d = f_buf.get(2 * ng);
  float* mz = d + ng;
  uint8_t* q = q_buf.get(desc.n_blocks() * kPackBlock + 64);
  const float* wr[kOuterR];
  for (size_t pb = 0; pb < n_panels; pb += panels_per_block) {
    const size_t pe = std::min(n_panels, pb + panels_per_block);
    for (size_t rb = r0; rb < r1; rb += kOuterR) {
      const size_t nr = std::min(kOuterR, r1 - rb);
      for (size_t i = 0; i < nr; ++i) {
        const uint8_t* codes = W.row_codes(rb + i);
        if (desc.bits != 8) {
          unpack(desc, codes, q);
          codes = q;
        }
        RowScales(W, rb + i, d, mz);
        DequantRow(codes, d, mz, cols, desc.group_size, conv + i * cols);
      }
      // Rows past the end repeat the last real row; their results are discarded.
      for (size_t i = 0; i < kOuterR; ++i) wr[i] = conv + std::min(i, nr - 1) * cols;
      for (size_t p = pb; p < pe; ++p) {
        const size_t t0 = p * P;
        const size_t nt = std::min(P, n_tokens - t0);
        const float* xp = xT + p * panel_floats;
        switch ((nt + N - 1) / N) {
          case 1:
            OuterTile<1>(wr, cols, xp, P, tile);
            break;
          case 2:
            OuterTile<2>(wr, cols, xp, P, tile);
            break;
          default:
            OuterTile<kOuterV>(wr, cols, xp, P, tile);
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
// Target-specific kernels.

#if HWY_TARGET == HWY_AVX3
#define LOWBIT_Q_NS avx512_plain
#define LOWBIT_Q_ATTR
#define LOWBIT_Q_VNNI 0
#include "kernels/matmul_q/matmul_q_avx512-inl.h"
#undef LOWBIT_Q_NS
#undef LOWBIT_Q_ATTR
#undef LOWBIT_Q_VNNI
#define LOWBIT_Q_NS avx512_vnni
#define LOWBIT_Q_ATTR __attribute__((target("avx512vnni,avx512vbmi,gfni")))
#define LOWBIT_Q_VNNI 1
#include "kernels/matmul_q/matmul_q_avx512-inl.h"
#undef LOWBIT_Q_NS
#undef LOWBIT_Q_ATTR
#undef LOWBIT_Q_VNNI

bool UseVnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi") &&
                          __builtin_cpu_supports("gfni");
  return has && matmul_q_detail::g_allow_vnni.load(std::memory_order_relaxed);
}
#endif

#if HWY_TARGET == HWY_AVX2
#include "kernels/matmul_q/matmul_q_avx2-inl.h"
#endif

#if HWY_TARGET == HWY_NEON
#define LOWBIT_Q_NS neon_plain
#define LOWBIT_Q_ATTR
#define LOWBIT_Q_SDOT 0
#include "kernels/matmul_q/matmul_q_neon-inl.h"
#undef LOWBIT_Q_NS
#undef LOWBIT_Q_ATTR
#undef LOWBIT_Q_SDOT
#define LOWBIT_Q_NS neon_sdot
#if defined(__clang__)
#define LOWBIT_Q_ATTR __attribute__((target("dotprod")))
#else
// GCC's arm_neon.h declares vdotq_s32 under arch=armv8.2-a+dotprod, and GCC only inlines it into functions whose
// ISA flags include all of those ("+dotprod" on the armv8-a baseline does not: "target specific option
// mismatch"). Every CPU with the dot product extension is Armv8.2 or later. "+crypto" keeps Highway's NEON
// target flags (HWY_TARGET_STR), so that the NEON target's helpers may still be inlined here.
#define LOWBIT_Q_ATTR __attribute__((target("arch=armv8.2-a+dotprod+crypto")))
#endif
#define LOWBIT_Q_SDOT 1
#include "kernels/matmul_q/matmul_q_neon-inl.h"
#undef LOWBIT_Q_NS
#undef LOWBIT_Q_ATTR
#undef LOWBIT_Q_SDOT

bool UseSdot() { return arm_has_dotprod() && matmul_q_detail::g_allow_vnni.load(std::memory_order_relaxed); }

#define LOWBIT_Q_NS neon_i8mm
#if defined(__clang__)
#define LOWBIT_Q_ATTR __attribute__((target("dotprod,i8mm")))
#else
#define LOWBIT_Q_ATTR __attribute__((target("arch=armv8.2-a+dotprod+i8mm+crypto")))  // (see neon_sdot)
#endif
#include "kernels/matmul_q/matmul_q_neon_i8mm-inl.h"
#undef LOWBIT_Q_NS
#undef LOWBIT_Q_ATTR

bool UseI8mm() {
  return arm_has_i8mm() && UseSdot() && matmul_q_detail::g_allow_i8mm.load(std::memory_order_relaxed);
}
#endif

bool UsesRowTilesImpl() {
#if HWY_TARGET == HWY_AVX3
  return UseVnni();
#else
  return false;
#endif
}

const char* TargetNameImpl() {
#if HWY_TARGET == HWY_AVX3
  if (UseVnni()) return "AVX3+VNNI";
#elif HWY_TARGET == HWY_NEON
  if (UseI8mm()) return "NEON+SDOT+I8MM";
  if (UseSdot()) return "NEON+SDOT";
#endif
  return hwy::TargetName(HWY_TARGET);
}

// ---------------------------------------------------------------------------------------------------------

void MatmulA8(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  const PackedDesc& desc = W.desc;
  const KernelTuning& tuning = kernel_tuning();
  const size_t kDotGrain = tuning.dot_grain;
  A8Acts a;
  a.n_tokens = n_tokens;
  a.nb = desc.n_blocks();
  a.nbp = (a.nb + 1) & ~size_t{1};
  a.ng = desc.n_groups();
  // One per-calling-thread buffer for all arrays (64-byte aligned pieces).
  const auto round64 = [](size_t n) { return (n + 63) & ~size_t{63}; };
  const size_t xq_bytes = round64(n_tokens * a.nbp * 32), s_bytes = round64(n_tokens * a.nbp * 4),
               s8x_bytes = round64(n_tokens * a.nbp * 32), g_bytes = round64(n_tokens * a.ng * 4);
  thread_local Scratch<uint8_t> buf;
  uint8_t* p = buf.get(xq_bytes + 2 * s_bytes + s8x_bytes + g_bytes);
  a.xq = reinterpret_cast<int8_t*>(p);
  a.s = reinterpret_cast<float*>(p + xq_bytes);
  a.isum = reinterpret_cast<int32_t*>(p + xq_bytes + s_bytes);
  a.s8x = reinterpret_cast<float*>(p + xq_bytes + 2 * s_bytes);
  a.gsum = reinterpret_cast<float*>(p + xq_bytes + 2 * s_bytes + s8x_bytes);
  const size_t cols = desc.cols, gs = desc.group_size;
  const bool fast_groups = gs % kPackBlock == 0;
#if HWY_TARGET == HWY_AVX3
  const bool tiled = W.tiles && UseVnni();
  a.nibble_order = !tiled && fast_groups && desc.bits == 4 && n_tokens < tuning.a8_outer_min_tokens;
#endif
  // (Quantizing is ~1/rows of the matmul's work: only worth a pool dispatch for many tokens.)
  if (n_tokens * cols < (size_t{1} << 16)) {
    PrepareA8(x, cols, gs, a, 0, n_tokens);
  } else {
    pool.parallel_for(n_tokens, 1, [&](size_t t0, size_t t1) HWY_ATTR { PrepareA8(x, cols, gs, a, t0, t1); });
  }
#if HWY_TARGET == HWY_AVX3
  if (tiled) {
    // Row tiles: 16 rows per tile; prefill in token blocks as below, 2 tiles per task at least.
    const size_t n_tiles = desc.rows / kTileRows;
    const bool prefill = n_tokens >= tuning.a8_outer_min_tokens;
    const size_t tb = prefill ? tuning.prefill_token_block : 0;
    const size_t grain = prefill ? 2 : std::max<size_t>(1, kDotGrain / kTileRows);
    a.for_token_blocks(tb, desc.rows, y, [&](const A8Acts& b, float* yb) HWY_ATTR {
      pool.parallel_for(n_tiles, grain, [&](size_t i0, size_t i1) HWY_ATTR {
        if (prefill)
          avx512_vnni::A8TiledOuterRange(W, b, i0, i1, yb);
        else
          avx512_vnni::A8TiledDotRange(W, b, i0, i1, tuning.decode_prefetch_bytes, yb);
      });
    });
    return;
  }
  if (fast_groups) {
    const bool vnni = UseVnni();
    if (n_tokens >= tuning.a8_outer_min_tokens) {
      a.for_token_blocks(tuning.prefill_token_block, desc.rows, y, [&](const A8Acts& b, float* yb) HWY_ATTR {
        pool.parallel_for(desc.rows, avx512_plain::kPanelRows, [&](size_t r0, size_t r1) HWY_ATTR {
          if (vnni)
            avx512_vnni::A8OuterRange(W, b, r0, r1, yb);
          else
            avx512_plain::A8OuterRange(W, b, r0, r1, yb);
        });
      });
    } else {
      pool.parallel_for(desc.rows, kDotGrain, [&](size_t r0, size_t r1) HWY_ATTR {
        if (vnni)
          avx512_vnni::A8DotRange(W, a, r0, r1, y);
        else
          avx512_plain::A8DotRange(W, a, r0, r1, y);
      });
    }
    return;
  }
#elif HWY_TARGET == HWY_AVX2
  if (fast_groups) {
    pool.parallel_for(desc.rows, kDotGrain,
                      [&](size_t r0, size_t r1) HWY_ATTR { avx2::A8DotRange(W, a, r0, r1, y); });
    return;
  }
#elif HWY_TARGET == HWY_NEON
  if (fast_groups && n_tokens >= tuning.a8_outer_min_tokens && UseI8mm()) {
    // usmmla: token pairs interleaved once per token block (kept in L2), then 4-row tiles (whole tiles per task).
    const size_t tb = tuning.prefill_token_block == 0 ? n_tokens : (tuning.prefill_token_block + 1) & ~size_t{1};
    neon_i8mm::PairActs pa;
    pa.nb = a.nb;
    pa.ng = a.ng;
    const size_t max_pairs = (std::min(tb, n_tokens) + 1) / 2;
    thread_local Scratch<int8_t> pair_xq;
    thread_local Scratch<float> pair_f;
    pa.xq = pair_xq.get(max_pairs * a.nb * 64);
    pa.s4 = pair_f.get(max_pairs * 4 * (a.nb + a.ng));
    pa.g4 = pa.s4 + max_pairs * 4 * a.nb;
    const size_t grain = (kDotGrain + 3) & ~size_t{3};
    a.for_token_blocks(tb, desc.rows, y, [&](const A8Acts& b, float* yb) HWY_ATTR {
      pa.n_pairs = (b.n_tokens + 1) / 2;
      neon_i8mm::BuildPairs(b, pa, 0, pa.n_pairs);
      pool.parallel_for(desc.rows, grain,
                        [&](size_t r0, size_t r1) HWY_ATTR { neon_i8mm::MmlaRange(W, b, pa, r0, r1, yb); });
    });
    return;
  }
  if (fast_groups) {
    const bool sdot = UseSdot();
    pool.parallel_for(desc.rows, kDotGrain, [&](size_t r0, size_t r1) HWY_ATTR {
      if (sdot)
        neon_sdot::A8DotRange(W, a, r0, r1, y);
      else
        neon_plain::A8DotRange(W, a, r0, r1, y);
    });
    return;
  }
#endif
  (void)fast_groups;
  pool.parallel_for(desc.rows, kDotGrain, [&](size_t r0, size_t r1) HWY_ATTR { A8RowsGeneric(W, a, r0, r1, y); });
}

void MatmulWO(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  const PackedDesc& desc = W.desc;
  const size_t kDotGrain = kernel_tuning().dot_grain;
  UnpackFn unpack = &UnpackRowGeneric;
#if HWY_TARGET == HWY_AVX3
  unpack = UseVnni() ? &avx512_vnni::UnpackRow : &avx512_plain::UnpackRow;
#endif
  WOActs a;
  a.x = x;
  a.cols = desc.cols;
  a.ng = desc.n_groups();
  thread_local Scratch<float> xg_buf;
  a.xg = xg_buf.get(std::min(n_tokens, kWOOuterMinTokens) * a.ng);
  const size_t gs = desc.group_size;
  if (n_tokens < kWOOuterMinTokens) {
    PrepareWO(x, gs, a, 0, n_tokens);
#if HWY_TARGET == HWY_AVX3
    if (gs % kPackBlock == 0) {
      const bool vnni = UseVnni();
      pool.parallel_for(desc.rows, kDotGrain, [&](size_t r0, size_t r1) HWY_ATTR {
        if (vnni)
          avx512_vnni::WODotRange(W, a, n_tokens, r0, r1, y);
        else
          avx512_plain::WODotRange(W, a, n_tokens, r0, r1, y);
      });
      return;
    }
#endif
    pool.parallel_for(desc.rows, kDotGrain,
                      [&](size_t r0, size_t r1) HWY_ATTR { WORowsDot(W, a, n_tokens, r0, r1, y, unpack); });
    return;
  }
  const DF df;
  const size_t cols = desc.cols;
  const size_t P = kOuterV * hn::Lanes(df);
  const size_t n_panels = (n_tokens + P - 1) / P;
  thread_local Scratch<float> xT_buf;
  float* xT = xT_buf.get(n_panels * cols * P);
  if (n_tokens * cols < (size_t{1} << 16)) {
    for (size_t p = 0; p < n_panels; ++p) PackPanel(x, n_tokens, cols, P, p, xT + p * cols * P);
  } else {
    pool.parallel_for(n_panels, 1, [&](size_t p0, size_t p1) HWY_ATTR {
      for (size_t p = p0; p < p1; ++p) PackPanel(x, n_tokens, cols, P, p, xT + p * cols * P);
    });
  }
  pool.parallel_for(desc.rows, 2 * kOuterR, [&](size_t r0, size_t r1) HWY_ATTR {
    WOOuterRange(W, xT, n_tokens, P, y, r0, r1, unpack);
  });
}

void MatmulQImpl(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  if (n_tokens == 0) return;
  if (W.desc.act == ActivationMode::DynamicInt8)
    MatmulA8(pool, W, x, n_tokens, y);
  else
    MatmulWO(pool, W, x, n_tokens, y);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels::matmul_q_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

namespace matmul_q_detail {
std::atomic<bool> g_allow_vnni{true};
std::atomic<bool> g_allow_i8mm{true};
HWY_EXPORT(MatmulQImpl);
HWY_EXPORT(QuantizeActivationsImpl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(UsesRowTilesImpl);
void CallMatmulQ(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  HWY_DYNAMIC_DISPATCH(MatmulQImpl)(pool, W, x, n_tokens, y);
}
void CallQuantizeActivations(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivationsImpl)(x, cols, xq, scales, sums);
}
const char* CallTargetName() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }
bool CallUsesRowTiles() { return HWY_DYNAMIC_DISPATCH(UsesRowTilesImpl)(); }
}  // namespace matmul_q_detail

void matmul_q(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y) {
  W.desc.validate("matmul_q weights");
  const bool rows_ok = W.codes && W.scales && (!W.desc.has_zeros || W.mins);
  if (!rows_ok && !(W.tiles && matmul_q_uses_row_tiles())) fail("matmul_q weights: a blob is missing");
  if (W.tiles && !row_tiles_fit(W.desc)) fail("matmul_q weights: row tiles for a format that has none");
  matmul_q_detail::CallMatmulQ(pool, W, x, n_tokens, y);
}

void quantize_activations(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums) {
  matmul_q_detail::CallQuantizeActivations(x, cols, xq, scales, sums);
}

const char* matmul_q_target_name() { return matmul_q_detail::CallTargetName(); }

bool matmul_q_uses_row_tiles() { return matmul_q_detail::CallUsesRowTiles(); }

void matmul_q_allow_vnni_for_test(bool allow) { matmul_q_detail::g_allow_vnni.store(allow); }

void matmul_q_allow_i8mm_for_test(bool allow) { matmul_q_detail::g_allow_i8mm.store(allow); }

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
