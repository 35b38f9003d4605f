#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "lowbit/error.h"

namespace lowbit {

PerplexityResult perplexity(Session& session, const std::vector<int32_t>& tokens, size_t n_ctx, size_t max_chunks,
                            const std::function<void(size_t, size_t, double)>& on_chunk) {
  const Tokenizer& tok = session.model().tokenizer();
  const size_t V = session.model().config().vocab_size;
  if (n_ctx < 4) fail("--ctx {} is too small for perplexity (at least 4)", n_ctx);
  if (n_ctx > session.n_ctx()) fail("--ctx {} exceeds the session context {}", n_ctx, session.n_ctx());
  size_t n_chunks = tokens.size() / n_ctx;
  if (n_chunks == 0)
    fail("the text has {} tokens, fewer than one window of --ctx {} (need at least {})", tokens.size(), n_ctx,
         n_ctx);
  if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = max_chunks;

  PerplexityResult r;
  r.n_chunks = n_chunks;
  r.n_tokens = tokens.size();
  const auto t0 = std::chrono::steady_clock::now();
  const size_t first = n_ctx / 2;
  double nll = 0, nll2 = 0;
  std::vector<int32_t> window(n_ctx);
  for (size_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, window.begin());
    if (tok.add_bos() && tok.bos_id() >= 0) window[0] = tok.bos_id();
    session.reset();
    const float* logits = session.prefill(window, true);
    for (size_t i = first; i + 1 < n_ctx; ++i) {
      const float* row = logits + i * V;
      // log-softmax of the next token, with a float max and a double sum (as llama.cpp).
      float mx = row[0];
      for (size_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
      double sum = 0;
      for (size_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
      const double logp = static_cast<double>(row[window[i + 1]] - mx) - std::log(sum);
      nll -= logp;
      nll2 += logp * logp;
      ++r.n_scored;
    }
    if (on_chunk) on_chunk(c, n_chunks, std::exp(nll / r.n_scored));
  }
  const double mean = nll / r.n_scored;
  r.ppl = std::exp(mean);
  if (r.n_scored > 1) {
    const double var = nll2 / r.n_scored - mean * mean;
    r.ppl_err = r.ppl * std::sqrt(std::max(0.0, var) / (r.n_scored - 1));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lowbit
