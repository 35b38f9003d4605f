// The T-MAC-style LUT decode (tmac_lut.h) against the row-tile unpack-and-dot decode (matmul_q on row tiles),
// 1 token, TinyLlama's FFN shape 5632 × 2048, 2 and 3 bits, a8 symmetric, group 32 and 128, 1 and 2 threads,
// cold (weights streamed from DRAM: calls cycle through >= 128 MiB of copies) and warm (one L3-resident copy).
// Both include quantizing the token (the LUT kernel also builds its tables per call).
// Runs are registered interleaved — tiles, lut, control, tiles, lut, control, ... (rep 0..2) per configuration
// — because this VM's bandwidth drifts over seconds; compare medians per configuration. GB/s = weight bytes
// (codes + scales) per second.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/half.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/matmul_q/tmac_lut.h"
#include "lowbit/aligned_buffer.h"
#include "kernels/tuning.h"
#include "quant/row_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 and _mm512_undefined_*() (see tmac_lut.cc)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#endif

namespace lowbit::kernels {
namespace {

ThreadPool& pool_of(int n) {
  static ThreadPool p1(1), p2(2);
  return n <= 1 ? p1 : p2;
}

constexpr size_t kColdBytes = size_t{128} << 20;

// Both layouts of n copies of one random matrix (built once per process and configuration: the scalar
// builders take seconds for 128 MiB).
struct Copies {
  std::vector<AlignedBuffer<uint8_t>> tiles, lut;
};

const Copies& copies_of(const PackedDesc& d, bool cold) {
  static std::map<std::tuple<int, size_t, bool>, std::unique_ptr<Copies>> cache;
  auto& slot = cache[{d.bits, d.group_size, cold}];
  if (slot) return *slot;
  slot = std::make_unique<Copies>();
  const size_t n = cold ? std::max<size_t>(2, (kColdBytes + d.total_bytes() - 1) / d.total_bytes()) : 1;
  std::mt19937 rng(1);
  for (size_t i = 0; i < n; ++i) {
    PackedStorage s(d);
    for (size_t j = 0; j < s.codes.size(); j += 4) {
      const uint32_t v = rng();
      std::memcpy(&s.codes[j], &v, std::min<size_t>(4, s.codes.size() - j));
    }
    for (auto& h : s.scales) h = f32_to_half(0.01f * float(rng() % 100 + 1) / 100.0f);
    slot->tiles.emplace_back(row_tiles_bytes(d));
    build_row_tiles(s.view(), 0, d.rows / kTileRows, slot->tiles.back().data());
    slot->lut.emplace_back(lut_tiles_bytes(d));
    build_lut_tiles(s.view(), 0, d.rows / kLutTileRows, slot->lut.back().data());
  }
  return *slot;
}

// ---------------------------------------------------------------------------------------------------------
// Control: the row-tile unpack-and-dot decode restructured like the LUT kernel (4 tiles per call sharing the
// activation broadcasts, so 4 weight streams; one token; symmetric), to separate the arithmetic from the access
// pattern. The same inner arithmetic as A8TiledTile<bits, true, 1> (matmul_q_avx512-inl.h), written here
// because the bench only needs it; checked against matmul_q on first use.
#if defined(__x86_64__)
#define LOWBIT_CTL_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// Codes of columns 4kd .. 4kd+3 of one block of a tile (quant/row_tiles.h), one byte per code.
template <int kBits>
inline __attribute__((always_inline)) LOWBIT_CTL_ATTR __m512i CtlGroup(const uint8_t* blk, int kd) {
  const __m512i v = _mm512_loadu_si512(blk + 64 * (kd / 4));
  __m512i c = _mm512_and_si512(_mm512_srli_epi16(v, 2 * (kd % 4)), _mm512_set1_epi8(0x03));
  if constexpr (kBits == 3) {
    const __m512i h = _mm512_loadu_si512(blk + 128);
    const __m512i hb = kd >= 2 ? _mm512_srli_epi16(h, kd - 2) : _mm512_slli_epi16(h, 2 - kd);
    c = _mm512_or_si512(c, _mm512_and_si512(hb, _mm512_set1_epi8(0x04)));
  }
  return c;
}

template <int kBits, int kR>
LOWBIT_CTL_ATTR __attribute__((noinline)) void CtlTiles(const uint8_t* tiles, size_t tb, size_t cb,
                                                        const int8_t* xq, const float* s, const int32_t* isum,
                                                        size_t ng, size_t gb, size_t pf, float* y) {
  __m512 acc[kR];
  for (int r = 0; r < kR; ++r) acc[r] = _mm512_setzero_ps();
  for (size_t g = 0; g < ng; ++g) {
    __m512 accg[kR];
    for (int r = 0; r < kR; ++r) accg[r] = _mm512_setzero_ps();
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      __m512i xw[8];
      for (int kd = 0; kd < 8; ++kd) {
        int32_t w;
        std::memcpy(&w, xq + b * 32 + 4 * kd, 4);
        xw[kd] = _mm512_set1_epi32(w);
      }
      const __m512i init = _mm512_set1_epi32(-(isum[b] << (kBits - 1)));
      const __m512 sb = _mm512_set1_ps(s[b]);
      for (int r = 0; r < kR; ++r) {
        const uint8_t* blk = tiles + r * tb + b * 64 * kBits;
        if (pf)
          for (size_t l = 0; l < 64 * kBits; l += 64)
            _mm_prefetch(reinterpret_cast<const char*>(blk + pf + l), _MM_HINT_T1);
        __m512i P[2] = {init, _mm512_setzero_si512()};
        for (int kd = 0; kd < 8; ++kd) P[kd % 2] = _mm512_dpbusd_epi32(P[kd % 2], CtlGroup<kBits>(blk, kd), xw[kd]);
        accg[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(P[0], P[1])), sb, accg[r]);
      }
    }
    for (int r = 0; r < kR; ++r) {
      const auto* dh = reinterpret_cast<const __m256i*>(tiles + r * tb + cb) + g;
      acc[r] = _mm512_fmadd_ps(accg[r], _mm512_cvtph_ps(_mm256_loadu_si256(dh)), acc[r]);
    }
  }
  for (int r = 0; r < kR; ++r) _mm512_storeu_ps(y + r * 16, acc[r]);
}

void control_matmul(ThreadPool& pool, const PackedDesc& d, const uint8_t* tiles, const float* x, float* y) {
  const size_t nb = d.n_blocks(), ng = d.n_groups(), gb = d.group_size / kPackBlock;
  static std::vector<int8_t> xq;
  static std::vector<float> s;
  static std::vector<int32_t> isum;
  xq.resize(nb * 32);
  s.resize(nb);
  isum.resize(nb);
  quantize_activations(x, d.cols, xq.data(), s.data(), isum.data());
  const size_t tb = row_tile_bytes(d), cb = row_tile_code_bytes(d), pf = kernel_tuning().decode_prefetch_bytes;
  pool.parallel_for(d.rows / kTileRows, 2, [&](size_t i0, size_t i1) {
    size_t i = i0;
    for (; i + 4 <= i1; i += 4)
      (d.bits == 2 ? CtlTiles<2, 4> : CtlTiles<3, 4>)(tiles + i * tb, tb, cb, xq.data(), s.data(), isum.data(), ng,
                                                      gb, pf, y + i * 16);
    for (; i < i1; ++i)
      (d.bits == 2 ? CtlTiles<2, 1> : CtlTiles<3, 1>)(tiles + i * tb, tb, cb, xq.data(), s.data(), isum.data(), ng,
                                                      gb, pf, y + i * 16);
  });
}
#else
void control_matmul(ThreadPool&, const PackedDesc&, const uint8_t*, const float*, float*) {}  // never reached
#endif

// args: bits, group, threads, cold, kernel (0 = row tiles via matmul_q, 1 = LUT, 2 = the control above:
// row tiles, 4 per call), rep (only orders the runs)
void BM_LutVsTiles(benchmark::State& state) {
  PackedDesc d;
  d.rows = 5632;
  d.cols = 2048;
  d.bits = int(state.range(0));
  d.group_size = state.range(1);
  d.has_zeros = false;
  d.act = ActivationMode::DynamicInt8;
  ThreadPool& pool = pool_of(int(state.range(2)));
  const bool cold = state.range(3) != 0;
  const int kernel = int(state.range(4));
  if (!matmul_q_uses_row_tiles() || !lut_kernel_available()) {
    state.SkipWithError("needs AVX-512 VNNI/VBMI");
    return;
  }
  const Copies& c = copies_of(d, cold);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(d.cols), y(d.rows);
  for (float& v : x) v = dist(rng);
  if (kernel == 2) {  // the control must agree with matmul_q (the same integer dots; float sums in another order)
    const PackedMatrix W{d, nullptr, nullptr, nullptr, c.tiles[0].data()};
    std::vector<float> want(d.rows);
    matmul_q(pool, W, x.data(), 1, want.data());
    control_matmul(pool, d, c.tiles[0].data(), x.data(), y.data());
    for (size_t r = 0; r < d.rows; ++r)
      if (std::fabs(y[r] - want[r]) > 1e-4f * (1.0f + std::fabs(want[r]))) {
        state.SkipWithError("control kernel disagrees with matmul_q");
        return;
      }
  }
  size_t i = 0;
  const size_t n = c.tiles.size();
  for (auto _ : state) {
    if (kernel == 1) {
      matmul_q_lut(pool, d, c.lut[i].data(), x.data(), 1, y.data());
    } else if (kernel == 2) {
      control_matmul(pool, d, c.tiles[i].data(), x.data(), y.data());
    } else {
      const PackedMatrix W{d, nullptr, nullptr, nullptr, c.tiles[i].data()};
      matmul_q(pool, W, x.data(), 1, y.data());
    }
    if (++i == n) i = 0;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(kernel == 1 ? "lut" : kernel == 2 ? "tiles x4 (control)" : "tiles");
  state.counters["GB/s"] =
      benchmark::Counter(double(d.total_bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void LutArgs(benchmark::internal::Benchmark* b) {
  for (int64_t bits : {2, 3})
    for (int64_t group : {32, 128})
      for (int64_t threads : {2, 1})
        for (int64_t cold : {1, 0})
          for (int64_t rep = 0; rep < 3; ++rep)
            for (int64_t kernel : {0, 1, 2}) b->Args({bits, group, threads, cold, kernel, rep});
  b->ArgNames({"bits", "group", "threads", "cold", "kernel", "rep"});
}
BENCHMARK(BM_LutVsTiles)->Name("MatmulQ/lut_vs_tiles")->Apply(LutArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace lowbit::kernels
