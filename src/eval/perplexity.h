// Perplexity with llama.cpp's method (examples/perplexity): tokenize the whole text once (adding BOS as the
// vocabulary says), cut it into non-overlapping windows of n_ctx tokens, replace each window's first token by
// BOS when the vocabulary adds one, and score positions n_ctx/2 .. n_ctx-2 predicting the next token.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/session.h"

namespace lowbit {

struct PerplexityResult {
  double ppl = 0;
  double ppl_err = 0;  // standard error of the estimate
  size_t n_chunks = 0;
  size_t n_scored = 0;  // tokens scored
  size_t n_tokens = 0;  // tokens in the whole text
  double seconds = 0;
};

// on_chunk(i, n_chunks, running_ppl) is called after each window.
PerplexityResult perplexity(Session& session, const std::vector<int32_t>& tokens, size_t n_ctx, size_t max_chunks,
                            const std::function<void(size_t, size_t, double)>& on_chunk = {});

}  // namespace lowbit
