// lowbit bench: prefill and decode speed of a model (median of several runs), or the machine's read bandwidth.
#include <algorithm>
#include <chrono>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/rss.h"
#include "eval/membw.h"
#include "eval/peak.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "lowbit/sampler.h"

namespace lowbit::cli {

namespace {
struct BenchArgs {
  ModelOptions model;
  bool membw = false;
  bool peak = false;
  bool limits = true;
  bool json = false;
  int n_prompt = 128;
  int n_gen = 64;
  int repeats = 3;
  int depth = 0;  // decode is timed with this many more tokens already in the KV cache
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

void print_peaks(const ComputePeaks& p, int threads) {
  const auto line = [](const char* kind, const ComputePeak& k) {
    if (k.gops > 0)
      fmt::print("{:<5} peak: {:8.1f} GOP/s  ({})\n", kind, k.gops, k.kernel);
    else
      fmt::print("{:<5} peak: not available on this CPU\n", kind);
  };
  line("int8", p.int8);
  line("bf16", p.bf16);
  line("fp32", p.fp32);
  fmt::print("({} threads; a multiply-add counts as 2 operations)\n", threads);
}

nlohmann::json peaks_json(const ComputePeaks& p) {
  return {{"int8_gops", p.int8.gops}, {"int8_kernel", p.int8.kernel}, {"bf16_gops", p.bf16.gops},
          {"bf16_kernel", p.bf16.kernel}, {"fp32_gops", p.fp32.gops}, {"fp32_kernel", p.fp32.kernel}};
}

void run_peak(const BenchArgs& a) {
  ThreadPool pool(a.model.threads > 0 ? a.model.threads : default_thread_count());
  const ComputePeaks p = measure_compute_peaks(pool);
  if (a.json) {
    auto j = peaks_json(p);
    j["threads"] = pool.size();
    fmt::print("{}\n", j.dump());
  } else {
    print_peaks(p, pool.size());
  }
}

// What one decoded token must read (every linear weight and the output projection; the embedding row is
// negligible) and the multiply-adds of the linear layers per token, with the arithmetic they run in.
struct ModelWork {
  uint64_t bytes_per_token = 0;
  double flops_per_token = 0;
  // The arithmetic prefill's linear layers run in: int8 (a8 schemes, native GGUF quants), bf16 × bf16 (bf16
  // weights where kernels::matmul_bf16_dot runs), else fp32.
  PeakKind arithmetic = PeakKind::Fp32;
};

ModelWork model_work(const Model& m) {
  ModelWork w;
  const auto add = [&](const Weight& x) {
    w.bytes_per_token += x.bytes();
    w.flops_per_token += 2.0 * static_cast<double>(x.rows) * static_cast<double>(x.cols);
  };
  for (size_t l = 0; l < m.config().n_layers; ++l) {
    const LayerWeights& L = m.layer(l);
    for (const Weight* x : {&L.wqkv, &L.wo, &L.w_gate_up, &L.w_down}) add(*x);
  }
  add(m.output());
  const Weight& q = m.layer(0).wqkv;
  if (q.is_packed && q.packed.desc.act == ActivationMode::DynamicInt8)
    w.arithmetic = PeakKind::Int8;
  else if (q.prefill_in_bf16())
    w.arithmetic = PeakKind::Bf16;
  return w;
}

void run_model_bench(const BenchArgs& a) {
  if (a.model.model.empty()) fail("bench needs -m MODEL (or --membw)");
  auto model = a.model.load();
  SessionOptions so = a.model.session();
  so.n_ctx = std::max<size_t>(so.n_ctx, a.n_prompt + a.depth + a.n_gen + 1);
  Session session(model, so);
  const size_t V = model->config().vocab_size;
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(a.n_prompt), filler(a.depth);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % V);
  for (auto& t : filler) t = static_cast<int32_t>(rng() % V);

  using clock = std::chrono::steady_clock;
  std::vector<double> pp, tg;
  session.prefill(prompt);  // warm-up: page in weights, spin up threads
  for (int r = 0; r < a.repeats; ++r) {
    session.reset();
    auto t0 = clock::now();
    const float* logits = session.prefill(prompt);
    auto t1 = clock::now();
    pp.push_back(a.n_prompt / std::chrono::duration<double>(t1 - t0).count());
    if (a.depth > 0) logits = session.prefill(filler);  // (not timed) the context decode runs at
    int32_t next = argmax(logits, V);
    auto t2 = clock::now();
    for (int i = 0; i < a.n_gen; ++i) next = argmax(session.decode(next), V);
    auto t3 = clock::now();
    tg.push_back(a.n_gen / std::chrono::duration<double>(t3 - t2).count());
  }
  const double prefill = median(pp), decode = median(tg);
  const uint64_t wbytes = model->weight_bytes();
  const double bpw = 8.0 * wbytes / model->n_params();
  const uint64_t rss = peak_rss_bytes();  // before the limit probes allocate their buffers
  // The limits, measured in this run: decode reads bytes_per_token per token at most at the read bandwidth;
  // prefill's linear layers run at most at the multiply-add peak of their arithmetic (int8, bf16 or fp32).
  const ModelWork work = model_work(*model);
  double bw = 0, peak = 0;
  std::string peak_kind;
  if (a.limits) {
    bw = measure_read_bandwidth(session.pool());
    // (only the arithmetic the linear layers run in)
    peak = measure_compute_peak(session.pool(), work.arithmetic).gops;
    peak_kind = work.arithmetic == PeakKind::Int8 ? "int8" : work.arithmetic == PeakKind::Bf16 ? "bf16" : "fp32";
  }
  const double decode_limit = bw > 0 ? bw * 1e9 / static_cast<double>(work.bytes_per_token) : 0;
  const double prefill_limit = peak > 0 ? peak * 1e9 / work.flops_per_token : 0;
  const auto pct = [](double x, double lim) { return lim > 0 ? 100.0 * x / lim : 0.0; };
  if (a.json) {
    nlohmann::json j{{"model", a.model.model},
                     {"recipe", model->recipe_json()},
                     {"threads", session.pool().size()},
                     {"n_prompt", a.n_prompt},
                     {"n_gen", a.n_gen},
                     {"depth", a.depth},
                     {"kv_type", a.model.kv_type},
                     {"prefill_tok_s", prefill},
                     {"decode_tok_s", decode},
                     {"file_bytes", model->file_bytes()},
                     {"weight_bytes", wbytes},
                     {"bits_per_weight", bpw},
                     {"peak_rss_bytes", rss},
                     {"weight_bytes_per_token", work.bytes_per_token},
                     {"flops_per_token", work.flops_per_token}};
    if (a.limits) {
      j["read_bandwidth_gb_s"] = bw;
      j["decode_limit_tok_s"] = decode_limit;
      j["decode_pct_of_limit"] = pct(decode, decode_limit);
      j["peak_kind"] = peak_kind;
      j["peak_gops"] = peak;
      j["prefill_limit_tok_s"] = prefill_limit;
      j["prefill_pct_of_peak"] = pct(prefill, prefill_limit);
    }
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("| model | recipe | threads | weights | bits/weight | prefill-{} tok/s | decode tok/s | peak RSS |\n",
             a.n_prompt);
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  fmt::print("| {} | {} | {} | {} | {:.2f} | {:.1f} | {:.1f} | {} |\n", model->config().name,
             model->recipe_json().empty() ? "native" : model->recipe_json(), session.pool().size(),
             format_bytes(static_cast<double>(wbytes)), bpw, prefill, decode, format_bytes(static_cast<double>(rss)));
  if (a.limits) {
    fmt::print("\ndecode:  {:.1f} tok/s = {:.1f}% of the bandwidth limit {:.1f} tok/s ({} per token at {:.1f} GB/s)\n",
               decode, pct(decode, decode_limit), decode_limit,
               format_bytes(static_cast<double>(work.bytes_per_token)), bw);
    fmt::print("prefill: {:.1f} tok/s = {:.1f}% of the {} peak limit {:.1f} tok/s ({:.2f} GFLOP per token at {:.0f} GOP/s)\n",
               prefill, pct(prefill, prefill_limit), peak_kind, prefill_limit, work.flops_per_token / 1e9, peak);
  }
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
  cmd->add_option("--tune-profile", a->model.tune_profile, "Kernel parameters saved by `lowbit tune`");
  cmd->add_flag("--row-layout", a->model.row_layout, "Keep weights in their row layout (no row tiles)");
  cmd->add_option("--kv-type", a->model.kv_type, "KV cache element type: f32, f16 or int8")->capture_default_str();
  cmd->add_flag("--membw", a->membw, "Measure the read bandwidth (the decode limit)");
  cmd->add_flag("--peak", a->peak, "Measure the int8, bf16 and fp32 multiply-add peaks (the prefill limits)");
  cmd->add_flag("!--no-limits", a->limits, "Skip measuring the bandwidth and peak limits after a model bench");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens for prefill")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--n-gen", a->n_gen, "Tokens to decode")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-d,--depth", a->depth, "Decode with this many more tokens already in the context (e.g. 2048)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-r,--repeats", a->repeats, "Runs (the median is reported)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([a] {
    if (a->membw && a->peak) fail("--membw and --peak are separate measurements; give one");
    a->membw ? run_membw(*a) : a->peak ? run_peak(*a) : run_model_bench(*a);
  });
}

}  // namespace lowbit::cli
