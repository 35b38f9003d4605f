// matmul_q benchmarks: decode (1 token) and prefill (128 tokens) on SmolLM2-135M shapes (576×576, 1536×576,
// 576×1536, 49152×576 as rows × cols) and a TinyLlama-size 5632×2048, for 2/3/4/5/6/8-bit codes, both activation
// modes; the fp32 matmul (kernels/ops.h) on the same shapes for comparison.
// Counters: GB/s = bytes of weights (codes + scales + mins) per second; GOP/s = 2·rows·cols·tokens per second.
// "tiles" = 1 gives int8-activation matrices (2-6 and 8 bits) their row tiles (quant/row_tiles.h) as the loader does on
// CPUs whose kernels use them; 0 keeps the row layout (compare the two).
// "cold" runs cycle through enough copies of the matrix (>= 128 MiB) that every call streams it from DRAM, as
// decode does with a whole model (L3 is 32 MiB here); "warm" runs reuse one copy (L2/L3 resident if it fits).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/bench_util.h"
#include "kernels/half.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/ops.h"
#include "lowbit/aligned_buffer.h"
#include "quant/row_tiles.h"

namespace lowbit::kernels {
namespace {

using bench::copies_for;
using bench::make_copies;
using bench::pool_of;
using bench::random_floats;

// args: rows, cols, tokens, bits, act (0 weight-only, 1 a8), group size (0 = channelwise), threads, cold, tiles
void BM_MatmulQ(benchmark::State& state) {
  PackedDesc d;
  d.rows = state.range(0);
  d.cols = state.range(1);
  const size_t n = state.range(2);
  d.bits = int(state.range(3));
  d.act = static_cast<ActivationMode>(state.range(4));
  d.group_size = state.range(5) ? state.range(5) : d.cols;
  d.has_zeros = d.act == ActivationMode::WeightOnly;  // torchchat: int4/int8 weight-only asym; a8wXdq symmetric
  ThreadPool& pool = pool_of(int(state.range(6)));
  const bool cold = state.range(7) != 0;
  const std::vector<PackedStorage> copies = make_copies(d, copies_for(d.total_bytes(), cold));
  const bool tiles = state.range(8) != 0 && matmul_q_uses_row_tiles() && row_tiles_fit(d);
  std::vector<AlignedBuffer<uint8_t>> tiled(tiles ? copies.size() : 0);
  std::vector<PackedMatrix> views;
  for (size_t c = 0; c < copies.size(); ++c) {
    views.push_back(copies[c].view());
    if (!tiles) continue;
    tiled[c].resize(row_tiles_bytes(d));
    build_row_tiles(views[c], 0, d.rows / kTileRows, tiled[c].data());
    views[c] = PackedMatrix{d, nullptr, nullptr, nullptr, tiled[c].data()};
  }
  const std::vector<float> x = random_floats(n * d.cols, 2);
  std::vector<float> y(n * d.rows);
  size_t i = 0;
  for (auto _ : state) {
    matmul_q(pool, views[i], x.data(), n, y.data());
    if (++i == copies.size()) i = 0;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(d.act == ActivationMode::DynamicInt8 ? "a8" : "wo") + " " + matmul_q_target_name() +
                 (tiles ? " tiles" : ""));
  state.counters["GOP/s"] = benchmark::Counter(2.0 * double(d.rows) * double(d.cols) * double(n) * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] =
      benchmark::Counter(double(d.total_bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

const int64_t kShapes[][2] = {{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}, {5632, 2048}};

void DecodeArgs(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {2, 1})
    for (int64_t act : {1, 0})
      for (int64_t bits : {4, 8, 2, 3, 5, 6})
        for (const auto& s : kShapes) b->Args({s[0], s[1], 1, bits, act, 32, threads, 1, 1});
  b->ArgNames({"rows", "cols", "tokens", "bits", "a8", "group", "threads", "cold", "tiles"});
}
void PrefillArgs(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {2, 1})
    for (int64_t act : {1, 0})
      for (int64_t bits : {4, 8, 2, 3})
        for (const auto& s : kShapes) b->Args({s[0], s[1], 128, bits, act, 32, threads, 0, 1});
  b->ArgNames({"rows", "cols", "tokens", "bits", "a8", "group", "threads", "cold", "tiles"});
}
void VariantArgs(benchmark::internal::Benchmark* b) {
  for (int64_t act : {1, 0})
    for (int64_t group : {128, 0}) {
      b->Args({5632, 2048, 1, 4, act, group, 2, 1, 1});
      b->Args({5632, 2048, 128, 4, act, group, 2, 0, 1});
    }
  for (int64_t act : {1, 0}) {
    b->Args({5632, 2048, 1, 4, act, 32, 1, 1, 1});    // one thread
    b->Args({5632, 2048, 1, 4, act, 32, 2, 0, 1});    // warm (L3-resident)
    b->Args({5632, 2048, 4, 4, act, 32, 2, 1, 1});    // a few tokens (speculative decoding, small batches)
    b->Args({5632, 2048, 16, 4, act, 32, 2, 0, 1});
    b->Args({5632, 2048, 512, 4, act, 32, 2, 0, 1});
  }
  // Warm decode of every width (the matrix stays in L3): the kernel's compute ceiling, to tell whether a width's
  // decode from DRAM is bound by bandwidth or by its decoding instructions.
  for (int64_t bits : {2, 3, 5, 6, 8}) b->Args({5632, 2048, 1, bits, 1, 32, 2, 0, 1});
  for (int64_t bits : {4, 8, 5, 6})  // the row layout against row tiles (a8 only has tiles)
    for (int64_t tiles : {0, 1}) {
      b->Args({5632, 2048, 1, bits, 1, 32, 2, 1, tiles});
      b->Args({5632, 2048, 1, bits, 1, 32, 1, 1, tiles});
      b->Args({5632, 2048, 128, bits, 1, 32, 2, 0, tiles});
      b->Args({2048, 5632, 128, bits, 1, 32, 2, 0, tiles});
      b->Args({2048, 5632, 1, bits, 1, 32, 2, 1, tiles});  // the down projection's shape, decode
    }
  b->ArgNames({"rows", "cols", "tokens", "bits", "a8", "group", "threads", "cold", "tiles"});
}
BENCHMARK(BM_MatmulQ)->Name("MatmulQ/decode")->Apply(DecodeArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatmulQ)->Name("MatmulQ/prefill")->Apply(PrefillArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatmulQ)->Name("MatmulQ/variants")->Apply(VariantArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The fp32 matmul on the same shapes. args: rows, cols, tokens, threads, cold
void BM_MatmulF32Baseline(benchmark::State& state) {
  const size_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  ThreadPool& pool = pool_of(int(state.range(3)));
  const size_t bytes = rows * cols * 4;
  const size_t nc = copies_for(bytes, state.range(4) != 0);
  std::vector<std::vector<float>> W;
  for (size_t i = 0; i < nc; ++i) W.push_back(random_floats(rows * cols, uint32_t(i)));
  const std::vector<float> x = random_floats(n * cols, 2);
  std::vector<float> y(n * rows);
  size_t i = 0;
  for (auto _ : state) {
    matmul(pool, WeightType::F32, W[i].data(), rows, cols, x.data(), n, y.data());
    if (++i == nc) i = 0;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string("F32 ") + simd_target_name());
  state.counters["GOP/s"] = benchmark::Counter(2.0 * double(rows) * double(cols) * double(n) * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void F32Args(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {2, 1})
    for (const auto& s : kShapes) {
      b->Args({s[0], s[1], 1, threads, 1});
      b->Args({s[0], s[1], 128, threads, 0});
    }
  b->ArgNames({"rows", "cols", "tokens", "threads", "cold"});
}
BENCHMARK(BM_MatmulF32Baseline)->Apply(F32Args)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace lowbit::kernels
