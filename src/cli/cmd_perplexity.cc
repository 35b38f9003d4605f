// lowbit perplexity: llama.cpp's method (see eval/perplexity.h), with a running estimate per window.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/perplexity.h"
#include "lowbit/error.h"

namespace lowbit::cli {

namespace {
struct PerplexityArgs {
  ModelOptions model;
  std::string file;
  size_t chunks = 0;
};

void run_perplexity(const PerplexityArgs& a) {
  std::string text = read_text_file(a.file);
  auto model = a.model.load();
  Session session(model, a.model.session());
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (tokens.size() >= a.model.ctx)  // otherwise perplexity() reports the short text as the error
    fmt::print(stderr, "{}: {} tokens; {} windows of {} (scoring the second half of each)\n", a.file, tokens.size(),
             tokens.size() / a.model.ctx, a.model.ctx);
  PerplexityResult r = perplexity(session, tokens, a.model.ctx, a.chunks, [](size_t i, size_t n, double ppl) {
    fmt::print("[{}]{:.4f},", i + 1, ppl);
    if (i + 1 == n) fmt::print("\n");
    std::fflush(stdout);
  });
  fmt::print(stderr, "{} windows, {} tokens scored in {:.1f} s ({:.1f} tok/s)\n", r.n_chunks, r.n_scored, r.seconds,
             r.n_chunks * a.model.ctx / r.seconds);
  fmt::print("PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_err);
}
}  // namespace

void add_perplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file (llama.cpp's method)");
  a->model.add(*cmd, 512);
  cmd->add_option("-f,--file", a->file, "Text file")->required();
  cmd->add_option("--chunks", a->chunks, "Score at most this many windows (0 = all)")->capture_default_str();
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace lowbit::cli
