// lowbit tune: QIGen-style per-CPU tuning. The performance model (kernels/tuning.cc) predicts the kernel
// parameters from the caches; this times candidates around the prediction on TinyLlama-1.1B-shaped int8-
// activation 4-bit matrices (Q4_0's arithmetic), keeps the fastest, and saves a profile that later runs load.
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
  std::vector<PackedStorage> weights;  // wo, gate|up, down of one TinyLlama layer
  std::vector<std::vector<uint8_t>> tiles;  // their row tiles, when this CPU's kernels use them (as at load)
  std::vector<PackedMatrix> views;
  std::vector<float> x, y;
};

Workload make_workload(ThreadPool& pool) {
  Workload w;
  const std::pair<size_t, size_t> shapes[] = {{2048, 2048}, {11264, 2048}, {2048, 5632}};  // rows × cols
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  size_t max_cols = 0, max_rows = 0;
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
    max_cols = std::max(max_cols, cols), max_rows = std::max(max_rows, rows);
  }
  w.tiles.resize(w.weights.size());
  for (size_t i = 0; i < w.weights.size(); ++i) {
    PackedMatrix v = w.weights[i].view();
    if (kernels::matmul_q_uses_row_tiles() && row_tiles_fit(v.desc)) {
      w.tiles[i].resize(row_tiles_bytes(v.desc));
      build_row_tiles(v, 0, v.desc.rows / kTileRows, w.tiles[i].data());
      v.tiles = w.tiles[i].data();
    }
    w.views.push_back(v);
  }
  w.x.resize(512 * max_cols);
  for (auto& v : w.x) v = nd(rng) * 50;
  w.y.resize(512 * max_rows);
  return w;
}

// Seconds for one pass over the workload's matrices with n_tokens tokens (best of `repeats`; decode passes
// are repeated to last ≥ ~20 ms).
double time_pass(ThreadPool& pool, Workload& w, size_t n_tokens, int repeats) {
  using clock = std::chrono::steady_clock;
  const int inner = n_tokens == 1 ? 20 : 1;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = clock::now();
    for (int i = 0; i < inner; ++i)
      for (const auto& W : w.views) kernels::matmul_q(pool, W, w.x.data(), n_tokens, w.y.data());
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
  Workload w = make_workload(pool);
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

  // 3. Decode rows per task.
  std::map<size_t, double> grain_s;
  for (size_t g : {4, 8, 16, 32, 64, 128}) {
    kernels::KernelTuning t = chosen;
    t.dot_grain = g;
    grain_s[g] = timed(t, 1);
    notes["dot_grain_us"][std::to_string(g)] = grain_s[g] * 1e6;
  }
  chosen.dot_grain = std::min_element(grain_s.begin(), grain_s.end(), [](auto& x, auto& y) {
                       return x.second < y.second;
                     })->first;

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
