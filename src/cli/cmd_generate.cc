// lowbit generate: stream a continuation of a prompt, then one summary line (speeds, peak RSS) on stderr.
#include <chrono>
#include <cstdio>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/rss.h"
#include "lowbit/error.h"
#include "lowbit/sampler.h"

namespace lowbit::cli {

namespace {

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
size_t complete_utf8_prefix(const std::string& s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    unsigned char c = s[n - back];
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

struct GenerateArgs {
  ModelOptions model;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  SamplerParams sampling;
  bool ignore_eos = false;
  bool show_ids = false;
};

void run_generate(const GenerateArgs& a) {
  a.sampling.validate();
  std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
  auto model = a.model.load();
  Session session(model, a.model.session());
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (ids.empty()) fail("the prompt is empty (give -p TEXT or -f FILE)");
  if (ids.size() >= session.n_ctx())
    fail("the prompt has {} tokens, which does not fit in the context of {} tokens (raise --ctx)", ids.size(),
         session.n_ctx());

  Sampler sampler(a.sampling);
  for (int32_t t : ids) sampler.accept(t);
  fmt::print("{}", prompt);
  std::fflush(stdout);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const float* logits = session.prefill(ids);
  const auto t1 = clock::now();
  std::string pending;
  std::vector<int32_t> generated;
  int n_decoded = 0;
  for (int i = 0; i < a.n_predict; ++i) {
    int32_t next = sampler.sample(logits, model->config().vocab_size);
    sampler.accept(next);
    generated.push_back(next);
    if (!a.ignore_eos && tok.is_eog(next)) break;
    pending += tok.token_to_piece(next);
    size_t ready = complete_utf8_prefix(pending);
    fmt::print("{}", pending.substr(0, ready));
    std::fflush(stdout);
    pending.erase(0, ready);
    if (i + 1 == a.n_predict) break;
    if (session.n_past() >= session.n_ctx()) {
      fmt::print(stderr, "\n[context of {} tokens is full]\n", session.n_ctx());
      break;
    }
    logits = session.decode(next);
    ++n_decoded;
  }
  const auto t2 = clock::now();
  fmt::print("{}\n", pending);
  std::fflush(stdout);
  if (a.show_ids) fmt::print(stderr, "generated ids: {}\n", fmt::join(generated, " "));
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  fmt::print(stderr, "prompt: {} tokens, {:.1f} tok/s | generated: {} tokens, {:.1f} tok/s | peak RSS {}\n",
             ids.size(), ids.size() / prefill_s, generated.size(), n_decoded > 0 ? n_decoded / decode_s : 0.0,
             format_bytes(static_cast<double>(peak_rss_bytes())));
}

}  // namespace

void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Continue a prompt");
  a->model.add(*cmd, 4096);
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  cmd->add_option("-f,--file", a->prompt_file, "Read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", a->sampling.temperature, "Temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalty looks back over")->capture_default_str();
  cmd->add_option("-s,--seed", a->sampling.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating after an end-of-generation token");
  cmd->add_flag("--show-ids", a->show_ids, "Print the generated token ids to stderr");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace lowbit::cli
