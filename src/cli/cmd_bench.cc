// lowbit bench: prefill and decode speed of a model (median of several runs), or the machine's read bandwidth.
#include <algorithm>
#include <chrono>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/rss.h"
#include "eval/membw.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "lowbit/sampler.h"

namespace lowbit::cli {

namespace {
struct BenchArgs {
  ModelOptions model;
  bool membw = false;
  bool json = false;
  int n_prompt = 128;
  int n_gen = 64;
  int repeats = 3;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_membw(const BenchArgs& a) {
  ThreadPool pool(a.model.threads > 0 ? a.model.threads : default_thread_count());
  double gbs = measure_read_bandwidth(pool);
  if (a.json) {
    fmt::print("{}\n", nlohmann::json{{"read_bandwidth_gb_s", gbs}, {"threads", pool.size()}}.dump());
  } else {
    fmt::print("read bandwidth: {:.1f} GB/s ({} threads, SIMD target {})\n", gbs, pool.size(),
               kernels::simd_target_name());
  }
}

void run_model_bench(const BenchArgs& a) {
  if (a.model.model.empty()) fail("bench needs -m MODEL (or --membw)");
  auto model = a.model.load();
  SessionOptions so = a.model.session();
  so.n_ctx = std::max<size_t>(so.n_ctx, a.n_prompt + a.n_gen + 1);
  Session session(model, so);
  const size_t V = model->config().vocab_size;
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(a.n_prompt);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % V);

  using clock = std::chrono::steady_clock;
  std::vector<double> pp, tg;
  session.prefill(prompt);  // warm-up: page in weights, spin up threads
  for (int r = 0; r < a.repeats; ++r) {
    session.reset();
    auto t0 = clock::now();
    const float* logits = session.prefill(prompt);
    auto t1 = clock::now();
    pp.push_back(a.n_prompt / std::chrono::duration<double>(t1 - t0).count());
    int32_t next = argmax(logits, V);
    auto t2 = clock::now();
    for (int i = 0; i < a.n_gen; ++i) next = argmax(session.decode(next), V);
    auto t3 = clock::now();
    tg.push_back(a.n_gen / std::chrono::duration<double>(t3 - t2).count());
  }
  const double prefill = median(pp), decode = median(tg);
  const uint64_t wbytes = model->weight_bytes();
  const double bpw = 8.0 * wbytes / model->n_params();
  if (a.json) {
    nlohmann::json j{{"model", a.model.model},
                     {"recipe", model->recipe_json()},
                     {"threads", session.pool().size()},
                     {"n_prompt", a.n_prompt},
                     {"n_gen", a.n_gen},
                     {"prefill_tok_s", prefill},
                     {"decode_tok_s", decode},
                     {"file_bytes", model->file_bytes()},
                     {"weight_bytes", wbytes},
                     {"bits_per_weight", bpw},
                     {"peak_rss_bytes", peak_rss_bytes()}};
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("| model | recipe | threads | weights | bits/weight | prefill-{} tok/s | decode tok/s | peak RSS |\n",
             a.n_prompt);
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  fmt::print("| {} | {} | {} | {} | {:.2f} | {:.1f} | {:.1f} | {} |\n", model->config().name, model->recipe_json().empty() ? "native" : model->recipe_json(),
             session.pool().size(), format_bytes(static_cast<double>(wbytes)), bpw, prefill, decode,
             format_bytes(static_cast<double>(peak_rss_bytes())));
}
}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Prefill/decode speed of a model, or the machine's read bandwidth");
  a->model.ctx = 512;
  cmd->add_option("-m,--model", a->model.model, "Model file (GGUF)");
  cmd->add_option("--dtype", a->model.dtype, "Run unquantized weights as f32, f16 or bf16");
  cmd->add_option("-q,--quantize", a->model.quantize, "Quantize in memory with a JSON recipe (string or file)");
  cmd->add_option("-t,--threads", a->model.threads, "Threads (default: physical cores)");
  cmd->add_flag("--membw", a->membw, "Measure the read bandwidth (the decode limit)");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens for prefill")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--n-gen", a->n_gen, "Tokens to decode")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-r,--repeats", a->repeats, "Runs (the median is reported)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([a] { a->membw ? run_membw(*a) : run_model_bench(*a); });
}

}  // namespace lowbit::cli
