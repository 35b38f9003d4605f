// Token sampling as llama.cpp's default chain applies it: repetition penalty → top-k → top-p → min-p →
// temperature → draw. temperature <= 0 means greedy (argmax of the penalised logits).
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace lowbit {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;          // <= 0: off
  float top_p = 0.95f;     // >= 1: off
  float min_p = 0.05f;     // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0xFFFFFFFF;   // llama.cpp's "random" default; any fixed value makes runs repeatable

  void validate() const;  // throws lowbit::Error naming the bad option
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  int32_t sample(const float* logits, size_t n_vocab);
  // Records a token (prompt or generated) for the repetition penalty.
  void accept(int32_t token);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> cand_;
};

int32_t argmax(const float* logits, size_t n);

}  // namespace lowbit
