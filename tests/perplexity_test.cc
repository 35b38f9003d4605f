// Perplexity follows llama.cpp's windowing: n_ctx/2 - 1 scored tokens per window, BOS replacing each window's
// first token when the vocabulary adds one, and the NLL of the next token from the window's own logits.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/perplexity.h"
#include "test_util.h"

namespace lowbit {
namespace {

TEST(Perplexity, WindowsAndScoredTokensMatchLlamaCpp) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  const size_t V = model->config().vocab_size, ctx = 32;
  test::Rng rng(11);
  std::vector<int32_t> tokens(3 * ctx + 5);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.next() % V);

  Session s(model, {});
  PerplexityResult r = perplexity(s, tokens, ctx, 0);
  EXPECT_EQ(r.n_chunks, 3u);
  EXPECT_EQ(r.n_scored, 3 * (ctx / 2 - 1));

  // Independent recomputation from per-window logits, in double.
  const Tokenizer& tok = model->tokenizer();
  double nll = 0;
  for (size_t c = 0; c < 3; ++c) {
    std::vector<int32_t> w(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    if (tok.add_bos()) w[0] = tok.bos_id();
    Session fresh(model, {});
    const float* logits = fresh.prefill(w, true);
    for (size_t i = ctx / 2; i + 1 < ctx; ++i) {
      const float* row = logits + i * V;
      double mx = *std::max_element(row, row + V), z = 0;
      for (size_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
      nll -= row[w[i + 1]] - mx - std::log(z);
    }
  }
  EXPECT_NEAR(r.ppl, std::exp(nll / r.n_scored), 1e-6 * r.ppl);
  EXPECT_GT(r.ppl_err, 0.0);

  PerplexityResult two = perplexity(s, tokens, ctx, 2);
  EXPECT_EQ(two.n_chunks, 2u);
}

TEST(Perplexity, TextShorterThanOneWindowIsAnError) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  Session s(model, {});
  EXPECT_THROW(perplexity(s, std::vector<int32_t>(10, 1), 32, 0), Error);
}

}  // namespace
}  // namespace lowbit
