// Causal grouped-query attention over an fp32, f16 or int8 KV cache (see ops.h for the layout).
//
// Work items are (token, kv head, key chunk). All query heads that share a kv head (up to 4 at a time) are
// processed together, so each key and value row is read once per group rather than once per query head:
// decode at long context is bound by reading the cache, and this divides that traffic by the group size.
//
// Keys are split into chunks only when there are too few (token, kv head) pairs to keep the threads busy
// (decode): each chunk then yields, per query head, its max score m, sum of exp(s - m) l and unnormalized
// sum_j exp(s_j - m) v_j, and the chunks are merged afterwards with the usual rescaling by exp(m_c - M)
// (the split-K / "flash decoding" scheme). Otherwise one item covers all of a token's keys and writes the
// normalized output directly.
//
// Per item: scores s_j = q·k_j / sqrt(head_dim) with SIMD dot products (fp32 lanes; 4 keys at a time share
// the q loads and one transpose-and-add lane reduction),
// softmax in fp32 (max-subtracted; exp via Highway's Exp with its argument clamped at -110, where it returns
// 0 anyway), then sum_j p_j v_j with the output accumulators of the whole group in registers.
// An int8 cache has one scale per stored head vector, and the queries are rounded to int8 per (token, head)
// vector too (quantize_kv_int8), so q·k_j is an exact integer dot scaled by both scales and 1/sqrt(head_dim).
// With AVX512-VNNI that dot is vpdpbusd (Int8ScoresVnni, below), with Arm's dot product extension sdot
// (Int8ScoresSdot); elsewhere the fp32 loops run on the codes (exact: |sums| < 2^24). Each softmax numerator
// p_j is scaled by v_j's scale after the sum l is taken, and the weighted sum of values runs the fp32 loops on
// the widened codes.
// Threads pull items from an atomic counter, most expensive (latest token) first, because causality makes
// items unequal and pool.parallel_for's static contiguous split would leave one thread with the long ones.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/arm_features.h"
#include "kernels/half.h"
#include "kernels/ops.h"

// clang-format off
#include "kernels/hwy_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on

namespace lowbit::kernels::attention_detail {
extern std::atomic<bool> g_allow_vnni;  // (tests turn the VNNI / sdot scores off to cover the plain loops)
}

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#include "kernels/keep_in_reg-inl.h"

// Cache elements: fp32, IEEE half (uint16_t bits) or int8 codes, widened to fp32 on load.
template <class T>
HWY_INLINE VF LoadKV(DF df, const T* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, p);
  } else if constexpr (std::is_same_v<T, int8_t>) {
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<int8_t, DF> d8;
    return hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, p)));
  } else {
    const hn::Rebind<hwy::float16_t, DF> dh;
    auto h = hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p));
    LOWBIT_KEEP_IN_REG(h);  // a plain load, not folded into vcvtph2ps
    return hn::PromoteTo(df, h);
  }
}
template <class T>
HWY_INLINE float KVToF32(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else if constexpr (std::is_same_v<T, int8_t>) {
    return static_cast<float>(x);
  } else {
    return half_to_f32(x);
  }
}

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
    HWY_TARGET == HWY_SCALAR
constexpr size_t kOutVecs = 2;  // 16 vector registers: kG·2 accumulators
#else
constexpr size_t kOutVecs = 4;  // 32 registers: up to 4 heads × 4 vectors
#endif
constexpr size_t kMaxGroup = 4;  // query heads processed together

// One chunk of keys [j0, j1) for kG query heads sharing a kv head.
struct ChunkOut {
  float* m;    // [kG] max score
  float* l;    // [kG] sum of exp(s - m)
  float* acc;  // [kG][head_dim] sum of exp(s - m) * v
};

// acc[g*head_dim + i*N + lane] = sum_j p[g*ldp + j] * v[j*stride + i*N + lane] for g < kG, i < kV.
template <size_t kG, size_t kV, class T>
HWY_INLINE void WeightedSum(const float* HWY_RESTRICT p, size_t ldp, size_t n, const T* HWY_RESTRICT v,
                            size_t stride, float* HWY_RESTRICT acc, size_t head_dim) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF o[kG][kV];
  for (size_t g = 0; g < kG; ++g)
    for (size_t i = 0; i < kV; ++i) o[g][i] = hn::Zero(df);
  for (size_t j = 0; j < n; ++j) {
    const T* vj = v + j * stride;
    VF vv[kV];
    for (size_t i = 0; i < kV; ++i) {
      vv[i] = LoadKV(df, vj + i * N);
      LOWBIT_KEEP_IN_REG(vv[i]);
    }
    for (size_t g = 0; g < kG; ++g) {
      const VF pj = hn::Set(df, p[g * ldp + j]);
      for (size_t i = 0; i < kV; ++i) o[g][i] = hn::MulAdd(pj, vv[i], o[g][i]);
    }
  }
  for (size_t g = 0; g < kG; ++g)
    for (size_t i = 0; i < kV; ++i) hn::StoreU(o[g][i], df, acc + g * head_dim + i * N);
}

#if HWY_TARGET != HWY_SCALAR
// Folds a vector to its lowest 128-bit block by adding halves.
template <class D, class V>
HWY_INLINE auto FoldTo128(D d, V v) {
  if constexpr (hn::MaxLanes(D()) * sizeof(float) > 16) {
    const hn::Half<D> dh;
    return FoldTo128(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  } else {
    return v;
  }
}

// out[0..3] = scale * (lane sums of a0..a3): fold each to 128 bits, then the classic transpose-and-add
// (two interleaving steps) yields all four sums in one vector, instead of four full reductions.
template <class D, class V>
HWY_INLINE void StoreSumOf4(D d, V a0, V a1, V a2, V a3, float scale, float* HWY_RESTRICT out) {
  const hn::Full128<float> d4;
  const hn::Full128<uint64_t> d64;
  const auto b0 = FoldTo128(d, a0), b1 = FoldTo128(d, a1), b2 = FoldTo128(d, a2), b3 = FoldTo128(d, a3);
  const auto t01 = hn::Add(hn::InterleaveLower(d4, b0, b1), hn::InterleaveUpper(d4, b0, b1));
  const auto t23 = hn::Add(hn::InterleaveLower(d4, b2, b3), hn::InterleaveUpper(d4, b2, b3));
  const auto w01 = hn::BitCast(d64, t01), w23 = hn::BitCast(d64, t23);
  const auto v =
      hn::Add(hn::BitCast(d4, hn::InterleaveLower(d64, w01, w23)), hn::BitCast(d4, hn::InterleaveUpper(d64, w01, w23)));
  hn::StoreU(hn::Mul(v, hn::Set(d4, scale)), d4, out);
}
#endif

// Per-position scales of an int8 cache for one kv head: key j's is k[j * stride] (null: no scales).
struct KVScales {
  const float* k = nullptr;
  const float* v = nullptr;
  size_t stride = 0;
};

// s[i] *= f[i * f_stride] for i < n (the per-position scales of an int8 cache).
HWY_INLINE void ScaleBy(float* HWY_RESTRICT s, const float* HWY_RESTRICT f, size_t f_stride, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  if (f_stride == 1)
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, s + i), hn::LoadU(df, f + i)), df, s + i);
  for (; i < n; ++i) s[i] *= f[i * f_stride];
}

#if HWY_TARGET == HWY_AVX3
#define LOWBIT_VNNI_ATTR __attribute__((target("avx512vnni")))
bool UseVnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has && attention_detail::g_allow_vnni.load(std::memory_order_relaxed);
}

// Sum of each of 16 int32 vectors: lane i of the result is the sum of a[i]'s 16 lanes. Two rounds of
// interleave-adds inside 128-bit blocks leave, per block b, a[4m..4m+3]'s block-b sums in vector m; two rounds
// of block shuffle-adds then sum the 4 blocks, block m ending up with a[4m..4m+3]. 45 operations for 16 sums.
LOWBIT_VNNI_ATTR HWY_INLINE __m512i SumsOf16(const __m512i (&a)[16]) {
  __m512i t[8], u[4];
  for (int i = 0; i < 8; ++i)
    t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]),
                            _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
  for (int i = 0; i < 4; ++i)
    u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]),
                            _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
  // 0x88 picks blocks (0, 2) of each operand, 0xDD blocks (1, 3).
  const __m512i v01 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], 0x88), _mm512_shuffle_i32x4(u[0], u[1], 0xDD));
  const __m512i v23 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[2], u[3], 0x88), _mm512_shuffle_i32x4(u[2], u[3], 0xDD));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(v01, v23, 0x88), _mm512_shuffle_i32x4(v01, v23, 0xDD));
}

// Scores of n int8 keys (k: key j0's codes; ks: its scale) for kG query heads with int8 codes q8[g], per-head
// scales scale[g] (query scale / sqrt(head_dim)) and code sums qsum[g]: s[g*ldp + j] = scale[g] * ks[j*ks_stride]
// * Σ_d q8[g][d]·k_j[d].
// vpdpbusd multiplies unsigned by signed bytes, so each key is fed as unsigned codes k + 128 (one xor per key,
// shared by the heads) against the signed query codes, and 128·Σq (one constant per head) is subtracted after.
// Accumulators: kP = kG rounded up to 1, 2 or 4 heads × kKeys = 16 / kP keys, one zmm each (lanes: partial
// sums over 4 bytes); SumsOf16 makes lane g·kKeys + u the score of head g, key u. Head vectors longer than 64
// bytes take several loads; the last is masked (zero query bytes cancel whatever key bytes face them).
template <size_t kG>
LOWBIT_VNNI_ATTR HWY_NOINLINE void Int8ScoresVnni(const int8_t* const* q8, const float* scale, const int32_t* qsum,
                                                  const int8_t* HWY_RESTRICT k, size_t stride, const float* ks,
                                                  size_t ks_stride, size_t n, size_t head_dim,
                                                  float* HWY_RESTRICT s, size_t ldp) {
  constexpr size_t kP = kG == 1 ? 1 : kG == 2 ? 2 : 4;
  constexpr size_t kKeys = 16 / kP;
  const size_t n_loads = (head_dim + 63) / 64;
  const __mmask64 last = head_dim % 64 ? (~0ULL >> (64 - head_dim % 64)) : ~0ULL;
  alignas(64) float lane_scale[16];
  alignas(64) int32_t lane_corr[16];
  for (size_t i = 0; i < 16; ++i) {
    const size_t g = i / kKeys;
    lane_scale[i] = g < kG ? scale[g] : 0.0f;
    lane_corr[i] = g < kG ? 128 * qsum[g] : 0;
  }
  const __m512 vscale = _mm512_load_ps(lane_scale);
  const __m512i vcorr = _mm512_load_si512(lane_corr);
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  for (size_t j = 0; j < n; j += kKeys) {
    const size_t nk = std::min(kKeys, n - j);
    __m512i acc[16];
    for (size_t i = 0; i < 16; ++i) acc[i] = _mm512_setzero_si512();
    for (size_t c = 0; c < n_loads; ++c) {
      const __mmask64 m = c + 1 == n_loads ? last : ~0ULL;
      __m512i qv[kG];
      for (size_t g = 0; g < kG; ++g) qv[g] = _mm512_maskz_loadu_epi8(m, q8[g] + 64 * c);
      for (size_t u = 0; u < kKeys; ++u) {
        // Keys past n read as zero codes (their scores are never used).
        const __m512i kv = u < nk ? _mm512_maskz_loadu_epi8(m, k + (j + u) * stride + 64 * c) : _mm512_setzero_si512();
        const __m512i ku = _mm512_xor_si512(kv, flip);
        for (size_t g = 0; g < kG; ++g) acc[g * kKeys + u] = _mm512_dpbusd_epi32(acc[g * kKeys + u], ku, qv[g]);
      }
    }
    alignas(64) float lane_ks[16];
    for (size_t i = 0; i < 16; ++i) {
      const size_t u = i % kKeys;
      lane_ks[i] = u < nk ? ks[(j + u) * ks_stride] : 0.0f;
    }
    const __m512i dots = _mm512_sub_epi32(SumsOf16(acc), vcorr);
    alignas(64) float out[16];
    _mm512_store_ps(out, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dots), vscale), _mm512_load_ps(lane_ks)));
    for (size_t g = 0; g < kG; ++g) std::copy(out + g * kKeys, out + g * kKeys + kKeys, s + g * ldp + j);
  }
}
#endif  // HWY_TARGET == HWY_AVX3

#if HWY_TARGET == HWY_NEON
bool UseSdot() { return arm_has_dotprod() && attention_detail::g_allow_vnni.load(std::memory_order_relaxed); }

// The same scores as Int8ScoresVnni with sdot, which multiplies signed by signed bytes (no offset): 4 keys at a
// time, one accumulator per (head, key) whose lanes are partial sums over 4 bytes; two rounds of pairwise adds
// turn a head's 4 accumulators into its 4 scores. Keys past n repeat the last one (their scores are never used).
// GCC: the target is switched with push/pop_options, because a target("arch=...") attribute here leaked into
// the functions compiled after it (LSE atomics in AttentionT, an illegal instruction on Armv8.0).
#if defined(__clang__)
#define LOWBIT_SDOT_ATTR __attribute__((target("dotprod")))
#else
#define LOWBIT_SDOT_ATTR
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod+crypto")  // (why these flags: see matmul_q.cc)
#endif
template <size_t kG>
LOWBIT_SDOT_ATTR HWY_NOINLINE void Int8ScoresSdot(const int8_t* const* q8, const float* scale,
                                                  const int8_t* HWY_RESTRICT k, size_t stride, const float* ks,
                                                  size_t ks_stride, size_t n, size_t head_dim,
                                                  float* HWY_RESTRICT s, size_t ldp) {
  const size_t d16 = head_dim / 16 * 16;
  for (size_t j = 0; j < n; j += 4) {
    const size_t nk = std::min<size_t>(4, n - j);
    const int8_t* kp[4];
    float ks4[4];
    for (size_t u = 0; u < 4; ++u) {
      kp[u] = k + (j + std::min(u, nk - 1)) * stride;
      ks4[u] = u < nk ? ks[(j + u) * ks_stride] : 0.0f;
    }
    int32x4_t acc[kG][4];
    for (size_t g = 0; g < kG; ++g)
      for (size_t u = 0; u < 4; ++u) acc[g][u] = vdupq_n_s32(0);
    for (size_t d = 0; d < d16; d += 16) {
      int8x16_t qv[kG];
      for (size_t g = 0; g < kG; ++g) qv[g] = vld1q_s8(q8[g] + d);
      for (size_t u = 0; u < 4; ++u) {
        const int8x16_t kv = vld1q_s8(kp[u] + d);
        for (size_t g = 0; g < kG; ++g) acc[g][u] = vdotq_s32(acc[g][u], kv, qv[g]);
      }
    }
    const float32x4_t vks = vld1q_f32(ks4);
    for (size_t g = 0; g < kG; ++g) {
      int32x4_t dots = vpaddq_s32(vpaddq_s32(acc[g][0], acc[g][1]), vpaddq_s32(acc[g][2], acc[g][3]));
      if (d16 != head_dim) {
        int32_t t[4];
        vst1q_s32(t, dots);
        for (size_t u = 0; u < 4; ++u)
          for (size_t d = d16; d < head_dim; ++d) t[u] += int32_t(q8[g][d]) * kp[u][d];
        dots = vld1q_s32(t);
      }
      vst1q_f32(s + g * ldp + j, vmulq_f32(vmulq_n_f32(vcvtq_f32_s32(dots), scale[g]), vks));
    }
  }
}
#if !defined(__clang__)
#pragma GCC pop_options
#endif
#endif  // HWY_TARGET == HWY_NEON

// Query side of one work item: kG query vectors and the per-head factor of their scores (1/sqrt(head_dim),
// times the query's scale for an int8 cache, whose q8/qsum are also set for the VNNI scores).
template <size_t kG>
struct Queries {
  const float* q[kG];
  float scale[kG];
  const int8_t* q8[kG];
  int32_t qsum[kG];
};

// Integer scores of an int8 cache where the CPU has an int8 dot product (s as Scores writes it); false where it
// has none or the cache is not int8, and Scores runs instead.
template <size_t kG, class T>
bool Int8DotScores(const Queries<kMaxGroup>& qs, const T* HWY_RESTRICT kh, size_t stride, size_t j0, size_t n,
                   size_t head_dim, float* HWY_RESTRICT s, size_t ldp, KVScales sc) {
  if constexpr (std::is_same_v<T, int8_t>) {
    if (!qs.q8[0]) return false;
#if HWY_TARGET == HWY_AVX3
    if (!UseVnni()) return false;
    Int8ScoresVnni<kG>(qs.q8, qs.scale, qs.qsum, kh + j0 * stride, stride, sc.k + j0 * sc.stride, sc.stride, n,
                       head_dim, s, ldp);
    return true;
#elif HWY_TARGET == HWY_NEON
    if (!UseSdot()) return false;
    Int8ScoresSdot<kG>(qs.q8, qs.scale, kh + j0 * stride, stride, sc.k + j0 * sc.stride, sc.stride, n, head_dim, s,
                       ldp);
    return true;
#endif
  }
  return false;
}

// s[g*ldp + j] = scale[g] * q[g]·k_{j0+j} (times key j's scale for an int8 cache), for j < n, in fp32 lanes.
template <size_t kG, class T>
void Scores(const Queries<kMaxGroup>& qs, const T* HWY_RESTRICT kh, size_t stride, size_t j0, size_t n,
            size_t head_dim, float* HWY_RESTRICT s, size_t ldp, KVScales sc) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t dv = head_dim / N * N;  // vectorized part of head_dim
  const float* const* qg = qs.q;
  const float* scale = qs.scale;

  // Scores, kKeys keys at a time so each q vector load and each lane reduction is shared.
  size_t j = 0;
#if HWY_TARGET != HWY_SCALAR
  constexpr size_t kKeys = 4;
  for (; j + kKeys <= n; j += kKeys) {
    const T* kj = kh + (j0 + j) * stride;
    VF a[kG][kKeys];
    for (size_t g = 0; g < kG; ++g)
      for (size_t u = 0; u < kKeys; ++u) a[g][u] = hn::Zero(df);
    for (size_t d = 0; d < dv; d += N) {
      VF qv[kG];
      for (size_t g = 0; g < kG; ++g) qv[g] = hn::LoadU(df, qg[g] + d);
      for (size_t u = 0; u < kKeys; ++u) {
        VF kv = LoadKV(df, kj + u * stride + d);
        LOWBIT_KEEP_IN_REG(kv);
        for (size_t g = 0; g < kG; ++g) a[g][u] = hn::MulAdd(qv[g], kv, a[g][u]);
      }
    }
    for (size_t g = 0; g < kG; ++g) {
      float* sg = s + g * ldp + j;
      StoreSumOf4(df, a[g][0], a[g][1], a[g][2], a[g][3], scale[g], sg);
      if (dv != head_dim) {
        for (size_t u = 0; u < kKeys; ++u) {
          float tail = 0.0f;
          for (size_t d = dv; d < head_dim; ++d) tail += qg[g][d] * KVToF32(kj[u * stride + d]);
          sg[u] += tail * scale[g];
        }
      }
    }
  }
#endif
  for (; j < n; ++j) {
    const T* kj = kh + (j0 + j) * stride;
    VF a[kG];
    for (size_t g = 0; g < kG; ++g) a[g] = hn::Zero(df);
    for (size_t d = 0; d < dv; d += N) {
      const VF kv = LoadKV(df, kj + d);
      for (size_t g = 0; g < kG; ++g) a[g] = hn::MulAdd(hn::LoadU(df, qg[g] + d), kv, a[g]);
    }
    for (size_t g = 0; g < kG; ++g) {
      float dot = hn::GetLane(hn::SumOfLanes(df, a[g]));
      for (size_t d = dv; d < head_dim; ++d) dot += qg[g][d] * KVToF32(kj[d]);
      s[g * ldp + j] = dot * scale[g];
    }
  }

  if (sc.k)  // int8 keys: each score times its key's scale
    for (size_t g = 0; g < kG; ++g) ScaleBy(s + g * ldp, sc.k + j0 * sc.stride, sc.stride, n);
}

// s: scratch of kG rows × ldp floats, ldp >= RoundUp(j1 - j0, N).
template <size_t kG, class T>
void AttendChunk(const Queries<kMaxGroup>& qs, const T* HWY_RESTRICT kh, const T* HWY_RESTRICT vh, size_t stride,
                 size_t j0, size_t j1, size_t head_dim, float* HWY_RESTRICT s, size_t ldp, ChunkOut out,
                 KVScales sc) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t n = j1 - j0;
  const size_t dv = head_dim / N * N;  // vectorized part of head_dim

  if (!Int8DotScores<kG>(qs, kh, stride, j0, n, head_dim, s, ldp, sc))
    Scores<kG>(qs, kh, stride, j0, n, head_dim, s, ldp, sc);

  // Softmax numerators, per head.
  const size_t n_pad = (n + N - 1) / N * N;
  const VF lo = hn::Set(df, -110.0f);
  for (size_t g = 0; g < kG; ++g) {
    float* sg = s + g * ldp;
    for (size_t j = n; j < n_pad; ++j) sg[j] = -std::numeric_limits<float>::infinity();
    VF vmax = hn::Set(df, -std::numeric_limits<float>::infinity());
    for (size_t j = 0; j < n_pad; j += N) vmax = hn::Max(vmax, hn::LoadU(df, sg + j));
    const VF mx = hn::MaxOfLanes(df, vmax);
    VF vsum = hn::Zero(df);
    for (size_t j = 0; j < n_pad; j += N) {
      const VF e = hwy::HWY_NAMESPACE::Exp(df, hn::Max(hn::Sub(hn::LoadU(df, sg + j), mx), lo));
      hn::StoreU(e, df, sg + j);
      vsum = hn::Add(vsum, e);
    }
    out.m[g] = hn::GetLane(mx);
    out.l[g] = hn::GetLane(hn::SumOfLanes(df, vsum));
  }

  if (sc.v)  // int8 values: fold each value's scale into its weight (l above stays the plain sum)
    for (size_t g = 0; g < kG; ++g) ScaleBy(s + g * ldp, sc.v + j0 * sc.stride, sc.stride, n);

  // Weighted sums of values.
  const T* v0 = vh + j0 * stride;
  size_t d = 0;
  for (; d + kOutVecs * N <= dv; d += kOutVecs * N)
    WeightedSum<kG, kOutVecs>(s, ldp, n, v0 + d, stride, out.acc + d, head_dim);
  for (; d < dv; d += N) WeightedSum<kG, 1>(s, ldp, n, v0 + d, stride, out.acc + d, head_dim);
  for (; d < head_dim; ++d) {
    for (size_t g = 0; g < kG; ++g) {
      float a = 0.0f;
      for (size_t j = 0; j < n; ++j) a += s[g * ldp + j] * KVToF32(v0[j * stride + d]);
      out.acc[g * head_dim + d] = a;
    }
  }
}

template <class T>
void AttendChunkG(size_t G, const Queries<kMaxGroup>& qs, const T* kh, const T* vh, size_t stride, size_t j0,
                  size_t j1, size_t head_dim, float* s, size_t ldp, ChunkOut out, KVScales sc) {
  switch (G) {
    case 1:
      return AttendChunk<1>(qs, kh, vh, stride, j0, j1, head_dim, s, ldp, out, sc);
    case 2:
      return AttendChunk<2>(qs, kh, vh, stride, j0, j1, head_dim, s, ldp, out, sc);
    case 3:
      return AttendChunk<3>(qs, kh, vh, stride, j0, j1, head_dim, s, ldp, out, sc);
    default:
      return AttendChunk<4>(qs, kh, vh, stride, j0, j1, head_dim, s, ldp, out, sc);
  }
}

template <class T>
void AttentionT(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const T* k, const T* v,
                size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out,
                size_t head_stride, const KVCacheScales* scales = nullptr) {
  if (n_tokens == 0 || n_heads == 0) return;
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t group = n_heads / n_kv_heads;
  const size_t n_sub = (group + kMaxGroup - 1) / kMaxGroup;  // head sub-groups per kv head
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const size_t max_ctx = pos0 + n_tokens;

  // Split keys into chunks only if (token, kv head, sub-group) items are too few for the threads.
  const size_t base_items = n_tokens * n_kv_heads * n_sub;
  const size_t want_items = 8 * static_cast<size_t>(pool.size());
  size_t chunk = max_ctx;
  if (pool.size() > 1 && base_items < want_items) {
    constexpr size_t kMinChunk = 256;
    const size_t splits = (want_items + base_items - 1) / base_items;
    chunk = std::max(kMinChunk, (max_ctx + splits - 1) / splits);
    chunk = (chunk + N - 1) / N * N;
  }
  const size_t max_chunks = (max_ctx + chunk - 1) / chunk;
  const bool split = max_chunks > 1;

  struct Item {
    uint32_t t, kvh, sub, c;
  };
  std::vector<Item> items;
  items.reserve(n_tokens * n_kv_heads * n_sub * max_chunks);
  for (size_t ti = 0; ti < n_tokens; ++ti) {
    const size_t t = n_tokens - 1 - ti;  // latest (most keys) first
    const size_t n_chunks = (pos0 + t + 1 + chunk - 1) / chunk;
    for (size_t c = 0; c < n_chunks; ++c)
      for (size_t g = 0; g < n_kv_heads; ++g)
        for (size_t sb = 0; sb < n_sub; ++sb) items.push_back({uint32_t(t), uint32_t(g), uint32_t(sb), uint32_t(c)});
  }

  // Split partials: [token][query head][chunk] × (head_dim + 2): acc, then m, l.
  const size_t part_stride = head_dim + 2;
  std::vector<float> partials(split ? n_tokens * n_heads * max_chunks * part_stride : 0);

  // An int8 cache: queries rounded to int8 per (token, head) vector; the generic loops read the codes as floats.
  std::vector<int8_t> q8;
  std::vector<float> q8f, q8scale;
  std::vector<int32_t> q8sum;
  if (scales) {
    const size_t nv = n_tokens * n_heads;
    q8.resize(nv * head_dim);
    q8f.resize(nv * head_dim);
    q8scale.resize(nv);
    q8sum.resize(nv);
    pool.parallel_for(nv, 16, [&](size_t v0, size_t v1) {
      for (size_t r = v0; r < v1; ++r) {
        int8_t* c = q8.data() + r * head_dim;
        q8scale[r] = quantize_kv_int8(q + r * head_dim, head_dim, c);
        int32_t sum = 0;
        for (size_t d = 0; d < head_dim; ++d) sum += c[d], q8f[r * head_dim + d] = c[d];
        q8sum[r] = sum;
      }
    });
  }

  const size_t ldp = (std::min(chunk, max_ctx) + N - 1) / N * N;
  std::atomic<size_t> next{0};
  pool.run([&](int, int) HWY_ATTR {
    hwy::AlignedFreeUniquePtr<float[]> s;
    hwy::AlignedFreeUniquePtr<float[]> local;  // m, l, acc for the unsplit case
    for (;;) {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= items.size()) break;
      if (!s) {
        s = hwy::AllocateAligned<float>(kMaxGroup * ldp);
        local = hwy::AllocateAligned<float>(kMaxGroup * (head_dim + 2));
      }
      const Item it = items[i];
      const size_t n_ctx = pos0 + it.t + 1;
      const size_t j0 = size_t(it.c) * chunk, j1 = std::min(n_ctx, j0 + chunk);
      const size_t h0 = size_t(it.kvh) * group + size_t(it.sub) * kMaxGroup;
      const size_t G = std::min(kMaxGroup, size_t(it.kvh + 1) * group - h0);
      Queries<kMaxGroup> qs{};
      for (size_t g = 0; g < G; ++g) {
        const size_t r = size_t(it.t) * n_heads + h0 + g;  // (token, head) vector
        if (scales) {
          qs.q[g] = q8f.data() + r * head_dim;
          qs.scale[g] = scale * q8scale[r];
          qs.q8[g] = q8.data() + r * head_dim;
          qs.qsum[g] = q8sum[r];
        } else {
          qs.q[g] = q + r * head_dim;
          qs.scale[g] = scale;
        }
      }
      ChunkOut co{local.get(), local.get() + kMaxGroup, local.get() + 2 * kMaxGroup};
      KVScales sc;
      if (scales) {
        const size_t at = size_t(it.kvh) * scales->head_stride;
        sc = {scales->k + at, scales->v + at, scales->stride};
      }
      AttendChunkG(G, qs, k + size_t(it.kvh) * head_stride, v + size_t(it.kvh) * head_stride, kv_stride, j0, j1, head_dim,
                   s.get(), ldp, co, sc);
      for (size_t g = 0; g < G; ++g) {
        const float* acc = co.acc + g * head_dim;
        if (!split) {
          float* o = out + (size_t(it.t) * n_heads + h0 + g) * head_dim;
          const float inv = 1.0f / co.l[g];
          for (size_t d = 0; d < head_dim; ++d) o[d] = acc[d] * inv;
        } else {
          float* p = partials.data() + ((size_t(it.t) * n_heads + h0 + g) * max_chunks + it.c) * part_stride;
          std::copy(acc, acc + head_dim, p);
          p[head_dim] = co.m[g];
          p[head_dim + 1] = co.l[g];
        }
      }
    }
  });

  if (!split) return;
  // Merge the chunks of every (token, query head).
  for (size_t t = 0; t < n_tokens; ++t) {
    const size_t n_chunks = (pos0 + t + 1 + chunk - 1) / chunk;
    for (size_t h = 0; h < n_heads; ++h) {
      const float* p = partials.data() + (t * n_heads + h) * max_chunks * part_stride;
      float M = -std::numeric_limits<float>::infinity();
      for (size_t c = 0; c < n_chunks; ++c) M = std::max(M, p[c * part_stride + head_dim]);
      float* o = out + (t * n_heads + h) * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      float L = 0.0f;
      for (size_t c = 0; c < n_chunks; ++c) {
        const float* pc = p + c * part_stride;
        const float w = std::exp(pc[head_dim] - M);
        L += w * pc[head_dim + 1];
        for (size_t d = 0; d < head_dim; ++d) o[d] += w * pc[d];
      }
      const float inv = 1.0f / L;
      for (size_t d = 0; d < head_dim; ++d) o[d] *= inv;
    }
  }
}

void AttentionImpl(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const float* k, const float* v,
                   size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out,
                   size_t head_stride) {
  AttentionT(pool, q, n_tokens, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, out, head_stride);
}
void AttentionF16Impl(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const uint16_t* k,
                      const uint16_t* v, size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim,
                      float* out, size_t head_stride) {
  AttentionT(pool, q, n_tokens, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, out, head_stride);
}

void AttentionInt8Impl(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const int8_t* k,
                       const int8_t* v, const KVCacheScales& scales, size_t kv_stride, size_t n_heads,
                       size_t n_kv_heads, size_t head_dim, float* out, size_t head_stride) {
  AttentionT(pool, q, n_tokens, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, out, head_stride, &scales);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

std::atomic<bool> attention_detail::g_allow_vnni{true};
void attention_allow_vnni_for_test(bool allow) { attention_detail::g_allow_vnni.store(allow); }

HWY_EXPORT(AttentionImpl);
HWY_EXPORT(AttentionF16Impl);
HWY_EXPORT(AttentionInt8Impl);

void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const float* k, const float* v,
               size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out, size_t head_stride) {
  HWY_DYNAMIC_DISPATCH(AttentionImpl)(pool, q, n_tokens, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, out,
                                      head_stride ? head_stride : head_dim);
}

void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const uint16_t* k, const uint16_t* v,
               size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out, size_t head_stride) {
  HWY_DYNAMIC_DISPATCH(AttentionF16Impl)(pool, q, n_tokens, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim,
                                         out, head_stride ? head_stride : head_dim);
}

void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const int8_t* k, const int8_t* v,
               const KVCacheScales& scales, size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim,
               float* out, size_t head_stride) {
  HWY_DYNAMIC_DISPATCH(AttentionInt8Impl)(pool, q, n_tokens, pos0, k, v, scales, kv_stride, n_heads, n_kv_heads,
                                          head_dim, out, head_stride ? head_stride : head_dim);
}

float quantize_kv_int8(const float* x, size_t n, int8_t* q) {
  float amax = 0.0f;
  bool finite = true;
  for (size_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(x[i]);
    amax = std::max(amax, std::fabs(x[i]));
  }
  if (!finite || amax == 0.0f) {
    std::fill(q, q + n, int8_t{0});
    return finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  }
  const float inv = 127.0f / amax;
  for (size_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inv));
  return amax / 127.0f;
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
