// lowbit tune: QIGen-style per-CPU tuning. The performance model (kernels/tuning.cc) predicts the kernel
// parameters from the caches; this times candidates around the prediction on TinyLlama-1.1B-shaped int8-
// activation 4-bit matrices (Q4_0's arithmetic; decode from DRAM, prefill from cache), keeps the fastest, and
// saves a profile that later runs load.
#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/tuning.h"
#include "lowbit/aligned_buffer.h"
#include "lowbit/error.h"
#include "quant/row_tiles.h"
#include "quant/rtn.h"

namespace lowbit::cli {

namespace {
struct TuneArgs {
  std::string out;
  int threads = 0;
  int repeats = 5;
};

struct Workload {
  std::vector<PackedStorage> weights;                   // wo, gate|up, down of one TinyLlama layer
  std::vector<PackedStorage> weight_copies;             // further row-layout copies (CPUs without row tiles)
  std::vector<AlignedBuffer<uint8_t>> tiles;            // row tiles of every copy, as at load (CPUs with them)
  std::vector<std::vector<PackedMatrix>> copies;        // copies[c][i]: matrix i of copy c
  std::vector<float> x, y;
};

// Decode streams weights from DRAM: the decode timings cycle through enough copies of the layer (4× the L3)
// that none is cache-resident; prefill timings reuse copy 0 (compute-bound).
Workload make_workload(ThreadPool& pool, size_t l3_bytes) {
  Workload w;
  const std::pair<size_t, size_t> shapes[] = {{2048, 2048}, {11264, 2048}, {2048, 5632}};  // rows × cols
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  size_t max_cols = 0, max_rows = 0, layer_bytes = 0;
  for (auto [rows, cols] : shapes) {
    std::vector<float> f(rows * cols);
    for (auto& v : f) v = nd(rng);
    PackedDesc d;
    d.bits = 4;
    d.group_size = 32;
    d.has_zeros = false;
    d.act = ActivationMode::DynamicInt8;
    d.rows = rows;
    d.cols = cols;
    w.weights.push_back(quantize_rtn(pool, f.data(), d));
    layer_bytes += d.total_bytes();
    max_cols = std::max(max_cols, cols), max_rows = std::max(max_rows, rows);
  }
  const size_t n_copies = std::clamp<size_t>(4 * l3_bytes / layer_bytes + 1, 2, 16);
  const bool tiled = kernels::matmul_q_uses_row_tiles();
  if (!tiled)
    for (size_t c = 1; c < n_copies; ++c)
      for (const auto& m : w.weights) w.weight_copies.push_back(m);
  for (size_t c = 0; c < n_copies; ++c) {
    std::vector<PackedMatrix> views;
    for (size_t i = 0; i < w.weights.size(); ++i) {
      PackedMatrix v = c == 0 || tiled ? w.weights[i].view() : w.weight_copies[(c - 1) * w.weights.size() + i].view();
      if (tiled && row_tiles_fit(v.desc)) {
        AlignedBuffer<uint8_t>& t = w.tiles.emplace_back(row_tiles_bytes(v.desc));
        build_row_tiles(v, 0, v.desc.rows / kTileRows, t.data());
        v = PackedMatrix{v.desc, nullptr, nullptr, nullptr, t.data()};
      }
      views.push_back(v);
    }
    w.copies.push_back(std::move(views));
  }
  w.x.resize(512 * max_cols);
  for (auto& v : w.x) v = nd(rng) * 50;
  w.y.resize(512 * max_rows);
  return w;
}

// Seconds for one pass over the layer with n_tokens tokens (best of `repeats`). Up to 16 tokens (decode,
// small batches) each pass takes the next copy; single-token passes are repeated to last ≥ ~20 ms.
double time_pass(ThreadPool& pool, Workload& w, size_t n_tokens, int repeats) {
  using clock = std::chrono::steady_clock;
  const int inner = n_tokens == 1 ? 20 : 1;
  const bool cold = n_tokens <= 16;
  static size_t next = 0;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = clock::now();
    for (int i = 0; i < inner; ++i) {
      const auto& layer = w.copies[cold ? next++ % w.copies.size() : 0];
      for (const auto& W : layer) kernels::matmul_q(pool, W, w.x.data(), n_tokens, w.y.data());
    }
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count() / inner);
  }
  return best;
}

void run_tune(const TuneArgs& a) {
  ThreadPool pool(a.threads > 0 ? a.threads : default_thread_count());
  const kernels::CpuInfo cpu = kernels::read_cpu_info();
  const kernels::KernelTuning compiled{}, predicted = kernels::predict_tuning(cpu);
  fmt::print("cpu: {} ({}), L1d {} KiB, L2 {} KiB, L3 {} MiB, {} cores; {} threads\n", cpu.model_name, cpu.isa,
             cpu.l1d >> 10, cpu.l2 >> 10, cpu.l3 >> 20, cpu.cores, pool.size());
  fmt::print("workload: one TinyLlama-1.1B layer's wo, gate|up, down as a8w4 g32 (Q4_0 arithmetic)\n\n");
  Workload w = make_workload(pool, cpu.l3);
  nlohmann::json notes = nlohmann::json::object();
  kernels::KernelTuning chosen = predicted;
  const auto timed = [&](const kernels::KernelTuning& t, size_t n) {
    kernels::set_kernel_tuning(t);
    return time_pass(pool, w, n, a.repeats);
  };

  // 1. Prefill token block, on 512- and 128-token prompts (the sum of both times).
  const size_t pb = predicted.prefill_token_block;
  const std::set<size_t> blocks = {0, std::max<size_t>(pb / 2 / 32 * 32, 32), pb, pb * 2, 512};
  std::map<size_t, double> block_s;
  for (size_t b : blocks) {
    kernels::KernelTuning t = chosen;
    t.prefill_token_block = b;
    block_s[b] = timed(t, 512) + timed(t, 128);
  }
  chosen.prefill_token_block = std::min_element(block_s.begin(), block_s.end(), [](auto& x, auto& y) {
                                 return x.second < y.second;
                               })->first;
  for (auto [b, s] : block_s) notes["prefill_token_block_ms"][std::to_string(b)] = s * 1e3;

  // 2. The dot/outer crossover: the smallest token count from which the outer form is faster, and stays so.
  std::map<size_t, std::pair<double, double>> cross;  // n → (dot s, outer s)
  for (size_t n : {2, 3, 4, 5, 6, 8, 10, 12, 16}) {
    kernels::KernelTuning dot = chosen, outer = chosen;
    dot.a8_outer_min_tokens = n + 1;
    outer.a8_outer_min_tokens = 2;
    cross[n] = {timed(dot, n), timed(outer, n)};
    notes["dot_vs_outer_ms"][std::to_string(n)] = {cross[n].first * 1e3, cross[n].second * 1e3};
  }
  size_t threshold = 17;
  for (auto it = cross.rbegin(); it != cross.rend(); ++it) {
    if (it->second.second < it->second.first) threshold = it->first;
    else break;
  }
  chosen.a8_outer_min_tokens = threshold;

  // Decode sweeps of one parameter (a copy of `chosen` with field = each value), timed on one token; the
  // times go to notes[key] in µs; returns the fastest value.
  const auto sweep_decode = [&](const std::vector<size_t>& values, size_t kernels::KernelTuning::*field,
                                const char* key) {
    std::map<size_t, double> seconds;
    for (size_t v : values) {
      kernels::KernelTuning t = chosen;
      t.*field = v;
      seconds[v] = timed(t, 1);
      notes[key][std::to_string(v)] = seconds[v] * 1e6;
    }
    return std::min_element(seconds.begin(), seconds.end(), [](auto& x, auto& y) { return x.second < y.second; })
        ->first;
  };
  // 3. Decode rows per task.
  chosen.dot_grain = sweep_decode({4, 8, 16, 32, 64, 128}, &kernels::KernelTuning::dot_grain, "dot_grain_us");
  // 4. Decode prefetch distance (4-bit row tiles only; 0 = none).
  if (kernels::matmul_q_uses_row_tiles())
    chosen.decode_prefetch_bytes = sweep_decode({0, 128, 192, 256, 320, 384, 512, 1024, 4096},
                                                &kernels::KernelTuning::decode_prefetch_bytes, "decode_prefetch_us");

  // Summary: each kernel's time with the compiled defaults, the prediction and the chosen parameters.
  fmt::print("| kernel (one layer) | compiled default | predicted (untuned) | tuned | tuned vs predicted | tuned vs default |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  nlohmann::json summary = nlohmann::json::array();
  for (size_t n : {size_t{1}, size_t{4}, size_t{8}, size_t{128}, size_t{512}}) {
    const double d = timed(compiled, n), p = timed(predicted, n), c = timed(chosen, n);
    fmt::print("| {} tokens | {:.3f} ms | {:.3f} ms | {:.3f} ms | {:.2f}x | {:.2f}x |\n", n, d * 1e3, p * 1e3,
               c * 1e3, p / c, d / c);
    summary.push_back({{"tokens", n}, {"default_ms", d * 1e3}, {"predicted_ms", p * 1e3}, {"tuned_ms", c * 1e3}});
  }
  notes["summary"] = summary;
  fmt::print("\n| parameter | compiled default | predicted | chosen |\n|---|---|---|---|\n");
  fmt::print("| prefill_token_block (0 = all) | {} | {} | {} |\n", compiled.prefill_token_block,
             predicted.prefill_token_block, chosen.prefill_token_block);
  fmt::print("| a8_outer_min_tokens | {} | {} | {} |\n", compiled.a8_outer_min_tokens, predicted.a8_outer_min_tokens,
             chosen.a8_outer_min_tokens);
  fmt::print("| dot_grain | {} | {} | {} |\n", compiled.dot_grain, predicted.dot_grain, chosen.dot_grain);
  fmt::print("| decode_prefetch_bytes (0 = none) | {} | {} | {} |\n", compiled.decode_prefetch_bytes,
             predicted.decode_prefetch_bytes, chosen.decode_prefetch_bytes);
  const std::string out = a.out.empty() ? kernels::default_tune_profile_path() : a.out;
  kernels::save_tune_profile(out, cpu, chosen, notes.dump());
  kernels::set_kernel_tuning(chosen);
  fmt::print("\nsaved {}\n", out);
}
}  // namespace

void add_tune(CLI::App& app) {
  auto a = std::make_shared<TuneArgs>();
  auto* cmd = app.add_subcommand("tune", "Time kernel parameters on this CPU and save a profile later runs load");
  cmd->add_option("-o,--out", a->out, "Profile path (default: ~/.cache/lowbit/tune.json)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("-r,--repeats", a->repeats, "Timings per candidate (the best is kept)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([a] { run_tune(*a); });
}

}  // namespace lowbit::cli
