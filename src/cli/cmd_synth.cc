// lowbit synth: a Llama model of real dimensions with random weights, as GGUF (for bandwidth-bound speed).
#include <chrono>

#include "cli/commands.h"
#include "cli/common.h"
#include "lowbit/error.h"
#include "synth/synth.h"

namespace lowbit::cli {

namespace {
struct SynthArgs {
  std::string preset, vocab, type = "f16", out;
  uint64_t seed = 1;
  int threads = 0;
};

void run_synth(const SynthArgs& a) {
  SynthOptions o;
  o.preset = find_synth_preset(a.preset);
  o.vocab_gguf = a.vocab;
  o.type = parse_write_type(a.type);
  o.seed = a.seed;
  ThreadPool pool(a.threads > 0 ? a.threads : default_thread_count());
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t bytes = write_synthetic_llama(a.out, o, pool);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}: synthetic {} ({} layers, dim {}, ffn {}, vocab {}), {} weights, {} in {:.1f} s\n", a.out,
             o.preset.name, o.preset.n_layers, o.preset.dim, o.preset.ffn_dim, o.preset.vocab_size, a.type,
             format_bytes(static_cast<double>(bytes)), s);
}
}  // namespace

void add_synth(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", "Write a random-weight Llama of real dimensions as GGUF");
  cmd->add_option("--preset", a->preset, "tinyllama-1.1b, llama-3.2-1b, llama-2-7b (or tiny)")->required();
  cmd->add_option("--vocab", a->vocab, "Copy the tokenizer from this GGUF (default: a byte-fallback vocabulary)");
  cmd->add_option("--type", a->type, "Weight type: f32, f16, bf16, q8_0, q4_0 (norms stay f32)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("-o,--out", a->out, "Output GGUF")->required();
  cmd->callback([a] { run_synth(*a); });
}

}  // namespace lowbit::cli
