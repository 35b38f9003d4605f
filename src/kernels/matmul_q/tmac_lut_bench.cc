// The T-MAC-style LUT decode (tmac_lut.h) against the row-tile unpack-and-dot decode (matmul_q on row tiles),
// 1 token, TinyLlama's FFN shape 5632 × 2048, 2 and 3 bits, a8 symmetric, group 32 and 128, 1 and 2 threads,
// cold (weights streamed from DRAM: calls cycle through >= 128 MiB of copies) and warm (one L3-resident copy).
// Both include quantizing the token (the LUT kernel also builds its tables per call).
// Runs are registered interleaved — tiles, lut, tiles, lut, ... (rep 0..2) per configuration
// — because this VM's bandwidth drifts over seconds; compare medians per configuration. GB/s = weight bytes
// (codes + scales) per second.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/bench_util.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/matmul_q/tmac_lut.h"
#include "lowbit/aligned_buffer.h"
#include "quant/row_tiles.h"

namespace lowbit::kernels {
namespace {

using bench::pool_of;

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
  for (const PackedStorage& s : bench::make_copies(d, bench::copies_for(d.total_bytes(), cold))) {
    slot->tiles.emplace_back(row_tiles_bytes(d));
    build_row_tiles(s.view(), 0, d.rows / kTileRows, slot->tiles.back().data());
    slot->lut.emplace_back(lut_tiles_bytes(d));
    build_lut_tiles(s.view(), 0, d.rows / kLutTileRows, slot->lut.back().data());
  }
  return *slot;
}

// args: bits, group, threads, cold, kernel (0 = row tiles via matmul_q, 1 = LUT), rep (only orders the runs)
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
  size_t i = 0;
  const size_t n = c.tiles.size();
  for (auto _ : state) {
    if (kernel == 1) {
      matmul_q_lut(pool, d, c.lut[i].data(), x.data(), 1, y.data());
    } else {
      const PackedMatrix W{d, nullptr, nullptr, nullptr, c.tiles[i].data()};
      matmul_q(pool, W, x.data(), 1, y.data());
    }
    if (++i == n) i = 0;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(kernel == 1 ? "lut" : "tiles");
  state.counters["GB/s"] =
      benchmark::Counter(double(d.total_bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void LutArgs(benchmark::internal::Benchmark* b) {
  for (int64_t bits : {2, 3})
    for (int64_t group : {32, 128})
      for (int64_t threads : {2, 1})
        for (int64_t cold : {1, 0})
          for (int64_t rep = 0; rep < 3; ++rep)
            for (int64_t kernel : {0, 1}) b->Args({bits, group, threads, cold, kernel, rep});
  b->ArgNames({"bits", "group", "threads", "cold", "kernel", "rep"});
}
BENCHMARK(BM_LutVsTiles)->Name("MatmulQ/lut_vs_tiles")->Apply(LutArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace lowbit::kernels
