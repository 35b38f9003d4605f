// Peak probes. Each runs kChains independent accumulators (latency × issue width of every core we target is
// below 16) over register-resident operands, so nothing but the multiply-add units limits it. Per-ISA
// functions are compiled with target attributes and picked by a run-time CPU check.
#include "eval/peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "kernels/arm_features.h"

namespace lowbit {

namespace {

constexpr int kChains = 12;
constexpr int64_t kInner = 4096;  // iterations between clock reads

// Each probe runs `iters` iterations of kChains instructions and returns a value depending on all results.
using Probe = float (*)(int64_t iters);

#if defined(__x86_64__)
// One lane of the accumulators, as a float (the value only keeps the chains observable; GCC 12's
// _mm512_reduce_* intrinsics warn about an uninitialized temporary inside target-attribute functions).
__attribute__((target("avx512f"))) float Lane0(__m512i v) {
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, v);
  return static_cast<float>(lanes[0]);
}
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float int8_vnni512(int64_t iters) {
  __m512i acc[kChains];
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (auto& x : acc) x = _mm512_setzero_si512();
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = _mm512_dpbusd_epi32(x, a, b);
  __m512i s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_epi32(s, acc[c]);
  return Lane0(s);
}
__attribute__((target("avx2,fma"))) float int8_avx2(int64_t iters) {
  __m256i acc[kChains];
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  for (auto& x : acc) x = _mm256_setzero_si256();
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = _mm256_add_epi32(x, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
  __m256i s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_epi32(s, acc[c]);
  return static_cast<float>(_mm256_extract_epi32(s, 0));
}
__attribute__((target("avx512f,avx512bf16"))) float bf16_avx512(int64_t iters) {
  __m512 acc[kChains];
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (auto& x : acc) x = _mm512_setzero_ps();
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = _mm512_dpbf16_ps(x, a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return Lane0(_mm512_castps_si512(s));
}
__attribute__((target("avx512f"))) float fp32_avx512(int64_t iters) {
  __m512 acc[kChains];
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
  for (auto& x : acc) x = _mm512_setzero_ps();
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = _mm512_fmadd_ps(x, a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return Lane0(_mm512_castps_si512(s));
}
__attribute__((target("avx2,fma"))) float fp32_avx2(int64_t iters) {
  __m256 acc[kChains];
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-6f);
  for (auto& x : acc) x = _mm256_setzero_ps();
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = _mm256_fmadd_ps(x, a, b);
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  float o[8];
  _mm256_storeu_ps(o, s);
  return o[0];
}
#elif defined(__aarch64__)
// (GCC inlines these intrinsics only under the full arch string; see kernels/matmul_q/matmul_q.cc.)
#if defined(__clang__)
#define LOWBIT_ATTR_SDOT __attribute__((target("dotprod")))
#define LOWBIT_ATTR_I8MM __attribute__((target("dotprod,i8mm")))
#define LOWBIT_ATTR_BF16 __attribute__((target("bf16")))
#else
#define LOWBIT_ATTR_SDOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define LOWBIT_ATTR_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define LOWBIT_ATTR_BF16 __attribute__((target("arch=armv8.2-a+bf16")))
#endif
LOWBIT_ATTR_I8MM float int8_usmmla(int64_t iters) {  // 2×8 by 8×2: 32 multiply-adds per instruction
  int32x4_t acc[kChains];
  const uint8x16_t a = vdupq_n_u8(3);
  const int8x16_t b = vdupq_n_s8(-2);
  for (auto& x : acc) x = vdupq_n_s32(0);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = vusmmlaq_s32(x, a, b);
  int32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c) s = vaddq_s32(s, acc[c]);
  return static_cast<float>(vaddvq_s32(s));
}
LOWBIT_ATTR_BF16 float bf16_bfmmla(int64_t iters) {  // 2×4 by 4×2: 16 multiply-adds per instruction
  float32x4_t acc[kChains];
  // 1.0 and ~1e-6 in bf16, read through volatile so that GCC does not materialize them with an fp16 fmov
  volatile uint16_t one = 0x3f80, tiny = 0x3580;
  const bfloat16x8_t a = vreinterpretq_bf16_u16(vdupq_n_u16(one)), b = vreinterpretq_bf16_u16(vdupq_n_u16(tiny));
  for (auto& x : acc) x = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = vbfmmlaq_f32(x, a, b);
  float32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c) s = vaddq_f32(s, acc[c]);
  return vaddvq_f32(s);
}
LOWBIT_ATTR_SDOT float int8_sdot(int64_t iters) {
  int32x4_t acc[kChains];
  const int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-2);
  for (auto& x : acc) x = vdupq_n_s32(0);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = vdotq_s32(x, a, b);
  int32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c) s = vaddq_s32(s, acc[c]);
  return static_cast<float>(vaddvq_s32(s));
}
float int8_neon(int64_t iters) {  // without dotprod: smull + sadalp, 8 multiply-adds per 2 instructions
  int32x4_t acc[kChains];
  const int8x8_t a = vdup_n_s8(3), b = vdup_n_s8(-2);
  for (auto& x : acc) x = vdupq_n_s32(0);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = vpadalq_s16(x, vmull_s8(a, b));
  int32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c) s = vaddq_s32(s, acc[c]);
  return static_cast<float>(vaddvq_s32(s));
}
float fp32_neon(int64_t iters) {
  float32x4_t acc[kChains];
  const float32x4_t a = vdupq_n_f32(0.999f), b = vdupq_n_f32(1e-6f);
  for (auto& x : acc) x = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = vfmaq_f32(b, x, a);
  float32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c) s = vaddq_f32(s, acc[c]);
  return vaddvq_f32(s);
}
#endif

float fp32_scalar(int64_t iters) {
  float acc[kChains] = {};
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : acc) x = x * 0.999f + 1e-6f;
  float s = 0;
  for (float x : acc) s += x;
  return s;
}

struct Choice {
  Probe probe = nullptr;
  double ops_per_iter = 0;  // per thread, per iteration of the chain loop
  const char* kernel = "";
};

Choice int8_choice() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
    return {int8_vnni512, kChains * 64.0 * 2, "vpdpbusd zmm"};
  if (__builtin_cpu_supports("avx2")) return {int8_avx2, kChains * 32.0 * 2, "vpmaddubsw+vpmaddwd ymm"};
#elif defined(__aarch64__)
  // (the instructions matmul_q's NEON kernels run: usmmla for prefill where present, sdot for decode)
  if (arm_has_i8mm()) return {int8_usmmla, kChains * 32.0 * 2, "usmmla v.4s"};
  if (arm_has_dotprod()) return {int8_sdot, kChains * 16.0 * 2, "sdot v.4s"};
  return {int8_neon, kChains * 8.0 * 2, "smull+sadalp"};
#endif
  return {};
}

Choice bf16_choice() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) return {bf16_avx512, kChains * 32.0 * 2, "vdpbf16ps zmm"};
#elif defined(__aarch64__)
  if (arm_has_bf16()) return {bf16_bfmmla, kChains * 16.0 * 2, "bfmmla v.4s"};
#endif
  return {};
}

Choice fp32_choice() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return {fp32_avx512, kChains * 16.0 * 2, "vfmadd zmm"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {fp32_avx2, kChains * 8.0 * 2, "vfmadd ymm"};
#elif defined(__aarch64__)
  return {fp32_neon, kChains * 4.0 * 2, "fmla v.4s"};
#endif
  return {fp32_scalar, kChains * 2.0, "scalar fma"};
}

ComputePeak measure(ThreadPool& pool, const Choice& c, double seconds) {
  if (!c.probe) return {};
  // Calibrate the iteration count on one thread, then run it on all threads at once.
  using clock = std::chrono::steady_clock;
  int64_t iters = kInner;
  for (;;) {
    const auto t0 = clock::now();
    volatile float sink = c.probe(iters);
    (void)sink;
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt > seconds / 4 || iters > (int64_t{1} << 40)) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(dt, 1e-6));
      break;
    }
    iters *= 4;
  }
  iters = std::max<int64_t>(iters, kInner);
  double best = 0;
  std::vector<float> sinks(pool.size());
  for (int pass = 0; pass < 3; ++pass) {
    const auto t0 = clock::now();
    pool.run([&](int t, int) { sinks[t] = c.probe(iters); });
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, c.ops_per_iter * static_cast<double>(iters) * pool.size() / dt / 1e9);
  }
  volatile float sink = 0;
  for (float s : sinks) sink = sink + s;
  return {best, c.kernel};
}

}  // namespace

ComputePeak measure_compute_peak(ThreadPool& pool, PeakKind kind, double seconds) {
  switch (kind) {
    case PeakKind::Int8: return measure(pool, int8_choice(), seconds);
    case PeakKind::Bf16: return measure(pool, bf16_choice(), seconds);
    case PeakKind::Fp32: return measure(pool, fp32_choice(), seconds);
  }
  return {};
}

ComputePeaks measure_compute_peaks(ThreadPool& pool, double seconds) {
  return {measure_compute_peak(pool, PeakKind::Int8, seconds), measure_compute_peak(pool, PeakKind::Bf16, seconds),
          measure_compute_peak(pool, PeakKind::Fp32, seconds)};
}

}  // namespace lowbit
