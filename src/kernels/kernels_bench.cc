// Kernel benchmarks: matmul decode (1 token) and prefill (128 tokens) on SmolLM2-135M shapes for the three
// weight types in both dense layouts, two TinyLlama shapes (bf16 incl. the vdpbf16ps prefill), attention, and
// the memory read bandwidth that decode is bounded by.
// Counters: GFLOP/s (2·rows·cols·tokens per call), GB/s (weight bytes per call).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "eval/membw.h"
#include "kernels/bench_util.h"
#include "kernels/ops.h"

namespace lowbit::kernels {
namespace {

using bench::pool_of;
using bench::random_floats;

// args: rows, cols, n_tokens, weight type, threads, layout (0 rows, 1 32-row groups, 2 groups with
// matmul_bf16_dot: bf16 activations, f16 weights rounded to bf16)
void BM_Matmul(benchmark::State& state) {
  const size_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const auto wt = static_cast<WeightType>(state.range(3));
  ThreadPool& pool = pool_of(int(state.range(4)));
  const int layout = int(state.range(5));
  if (layout == 2 && !matmul_bf16_dot_available(DenseLayout::Tiles, wt)) {
    state.SkipWithError("matmul_bf16_dot needs 16-bit weights and AVX512-BF16");
    return;
  }
  const size_t es = weight_type_bytes(wt), wbytes = rows * cols * es;
  std::unique_ptr<uint8_t[]> W(new (std::align_val_t(64)) uint8_t[wbytes]);
  {
    const std::vector<float> f = random_floats(rows * cols, 1);
    if (wt == WeightType::F32) std::memcpy(W.get(), f.data(), wbytes);
    if (wt == WeightType::F16) f32_to_f16(f.data(), reinterpret_cast<uint16_t*>(W.get()), f.size());
    if (wt == WeightType::BF16) f32_to_bf16(f.data(), reinterpret_cast<uint16_t*>(W.get()), f.size());
  }
  if (layout > 0) {
    std::unique_ptr<uint8_t[]> T(new (std::align_val_t(64)) uint8_t[wbytes]);
    dense_rows_to_tiles(es, W.get(), rows, cols, T.get(), 0, dense_groups(rows));
    W = std::move(T);
  }
  const std::vector<float> x = random_floats(n * cols, 2);
  std::vector<float> y(n * rows);
  for (auto _ : state) {
    if (layout == 2)
      matmul_bf16_dot(pool, wt, reinterpret_cast<const uint16_t*>(W.get()), DenseLayout::Tiles, rows, cols, x.data(),
                      n, y.data());
    else
      matmul(pool, wt, W.get(), rows, cols, x.data(), n, y.data(), layout ? DenseLayout::Tiles : DenseLayout::Rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  static const char* kNames[] = {"F32", "F16", "BF16"};
  static const char* kLayouts[] = {"rows", "groups", "groups, bf16 dot"};
  state.SetLabel(std::string(kNames[state.range(3)]) + " " + kLayouts[layout] + " " + simd_target_name());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(rows) * double(cols) * double(n) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(double(wbytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void MatmulArgs(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
  for (int64_t threads : {2, 1})
    for (int64_t n : {1, 128})
      for (int64_t wt : {0, 1, 2})
        for (int64_t layout : {0, 1})
          for (const auto& s : shapes) b->Args({s[0], s[1], n, wt, threads, layout});
  b->ArgNames({"rows", "cols", "tokens", "wtype", "threads", "layout"});
}
BENCHMARK(BM_Matmul)->Apply(MatmulArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
// Token counts around the dot-form / outer-product switch and a long prefill.
BENCHMARK(BM_Matmul)
    ->Args({1536, 576, 4, 0, 2, 0})
    ->Args({1536, 576, 7, 0, 2, 0})
    ->Args({1536, 576, 8, 0, 2, 0})
    ->Args({1536, 576, 16, 0, 2, 0})
    ->Args({1536, 576, 512, 0, 2, 0})
    ->Args({576, 1536, 512, 2, 2, 0})
    ->ArgNames({"rows", "cols", "tokens", "wtype", "threads", "layout"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// TinyLlama-1.1B's down and gate|up projections (weights far larger than the L3 cache): decode streaming from
// rows against groups, and bf16 / f16 prefill in fp32 arithmetic against vdpbf16ps.
void MatmulLargeArgs(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{2048, 5632}, {11264, 2048}};
  for (const auto& s : shapes) {
    for (int64_t layout : {0, 1}) b->Args({s[0], s[1], 1, 2, 2, layout});
    for (int64_t wt : {2, 1})
      for (int64_t layout : {0, 1, 2}) b->Args({s[0], s[1], 128, wt, 2, layout});
  }
  b->ArgNames({"rows", "cols", "tokens", "wtype", "threads", "layout"});
}
BENCHMARK(BM_Matmul)->Apply(MatmulLargeArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

// args: n_tokens, pos0, threads, query heads, kv heads (head_dim 64), cache type, layout.
// SmolLM2-135M: 9 / 3; TinyLlama: 32 / 4.
// kv_type 0 f32, 1 f16, 2 int8, 3 int8 without the AVX512-VNNI scores (the plain loops, for comparison).
// head_major 1: the Session's cache layout, [kv head][pos][head_dim] (each head's keys contiguous); 0: rows
// [pos][kv_heads * head_dim], as in the tests.
void BM_Attention(benchmark::State& state) {
  const size_t n = state.range(0), pos0 = state.range(1);
  ThreadPool& pool = pool_of(int(state.range(2)));
  const size_t heads = state.range(3), kv = state.range(4), hd = 64;
  const int type = int(state.range(5));
  const bool head_major = state.range(6) != 0;
  const size_t ctx = pos0 + n, rows = ctx * kv;  // stored head vectors
  const size_t stride = head_major ? hd : kv * hd, head_stride = head_major ? ctx * hd : hd;
  const std::vector<float> q = random_floats(n * heads * hd, 3);
  const std::vector<float> k = random_floats(rows * hd, 4);
  const std::vector<float> v = random_floats(rows * hd, 5);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  std::vector<int8_t> k8(k.size()), v8(v.size());
  std::vector<float> ks(rows), vs(rows);  // one scale per stored head vector, in the same order
  if (type == 1) {
    f32_to_f16(k.data(), k16.data(), k.size());
    f32_to_f16(v.data(), v16.data(), v.size());
  } else if (type >= 2) {
    for (size_t r = 0; r < rows; ++r) {
      ks[r] = quantize_kv_int8(k.data() + r * hd, hd, k8.data() + r * hd);
      vs[r] = quantize_kv_int8(v.data() + r * hd, hd, v8.data() + r * hd);
    }
  }
  // Scale of head g at position j: [g * ctx + j] head-major, [j * kv + g] otherwise.
  const KVCacheScales sc = head_major ? KVCacheScales{ks.data(), vs.data(), 1, ctx}
                                      : KVCacheScales{ks.data(), vs.data(), kv, 1};
  std::vector<float> out(n * heads * hd);
  attention_allow_vnni_for_test(type != 3);
  for (auto _ : state) {
    if (type == 1)
      attention(pool, q.data(), n, pos0, k16.data(), v16.data(), stride, heads, kv, hd, out.data(), head_stride);
    else if (type >= 2)
      attention(pool, q.data(), n, pos0, k8.data(), v8.data(), sc, stride, heads, kv, hd, out.data(), head_stride);
    else
      attention(pool, q.data(), n, pos0, k.data(), v.data(), stride, heads, kv, hd, out.data(), head_stride);
    benchmark::DoNotOptimize(out.data());
  }
  attention_allow_vnni_for_test(true);
  double flops = 0;  // q·k and p·v: 4·head_dim per (query head, key)
  for (size_t t = 0; t < n; ++t) flops += 4.0 * hd * heads * double(pos0 + t + 1);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(type == 1 ? "f16" : type == 2 ? "int8" : type == 3 ? "int8 plain" : "f32");
}
BENCHMARK(BM_Attention)
    ->Args({1, 1023, 2, 9, 3, 0, 0})
    ->Args({1, 8191, 2, 9, 3, 0, 0})
    ->Args({512, 0, 2, 9, 3, 0, 0})
    ->Args({1, 2047, 2, 32, 4, 0, 1})
    ->Args({1, 2047, 2, 32, 4, 1, 1})
    ->Args({1, 2047, 2, 32, 4, 2, 1})
    ->Args({1, 2047, 2, 32, 4, 3, 1})
    ->Args({1, 2047, 1, 32, 4, 0, 1})
    ->Args({1, 2047, 1, 32, 4, 1, 1})
    ->Args({1, 2047, 1, 32, 4, 2, 1})
    ->ArgNames({"tokens", "pos0", "threads", "heads", "kv_heads", "kv_type", "head_major"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_ReadBandwidth(benchmark::State& state) {
  ThreadPool& pool = pool_of(int(state.range(0)));
  double gbs = 0;
  for (auto _ : state) gbs = measure_read_bandwidth(pool, size_t{1} << 30, 5);
  state.counters["GB/s"] = gbs;
}
BENCHMARK(BM_ReadBandwidth)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lowbit::kernels
