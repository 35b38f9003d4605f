#include "lowbit/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "lowbit/error.h"

namespace lowbit {

void SamplerParams::validate() const {
  if (!std::isfinite(temperature)) fail("--temp must be a finite number");
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("--top-p must be in (0, 1], got {}", top_p);
  if (min_p < 0.0f || min_p > 1.0f) fail("--min-p must be in [0, 1], got {}", min_p);
  if (!(repeat_penalty > 0.0f)) fail("--repeat-penalty must be positive, got {}", repeat_penalty);
  if (repeat_last_n < 0) fail("--repeat-last-n must be >= 0, got {}", repeat_last_n);
}

Sampler::Sampler(const SamplerParams& params) : p_(params), rng_(params.seed) { p_.validate(); }

int32_t argmax(const float* logits, size_t n) {
  return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
}

void Sampler::accept(int32_t token) {
  if (p_.repeat_last_n == 0) return;
  recent_.push_back(token);
  while (recent_.size() > static_cast<size_t>(p_.repeat_last_n)) recent_.pop_front();
}

int32_t Sampler::sample(const float* logits, size_t n_vocab) {
  cand_.resize(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};

  // Repetition penalty (CTRL-style, as llama.cpp): divide positive logits, multiply negative ones.
  if (p_.repeat_penalty != 1.0f) {
    std::unordered_set<int32_t> seen(recent_.begin(), recent_.end());
    for (int32_t t : seen) {
      if (t < 0 || static_cast<size_t>(t) >= n_vocab) continue;
      float& l = cand_[t].first;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  if (p_.temperature <= 0.0f)
    return std::max_element(cand_.begin(), cand_.end(), [](auto& a, auto& b) { return a.first < b.first; })->second;

  size_t n = n_vocab;
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) n = p_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), by_logit);
  cand_.resize(n);

  // Softmax over the survivors (at temperature 1, as llama.cpp computes top-p/min-p before temperature).
  auto probs = [&](float temp) {
    std::vector<double> p(cand_.size());
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) sum += p[i] = std::exp((cand_[i].first - cand_[0].first) / temp);
    for (double& v : p) v /= sum;
    return p;
  };
  if (p_.top_p < 1.0f) {
    std::vector<double> p = probs(1.0f);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0.0f) {
    // Keep tokens whose probability is at least min_p times the top one's.
    const float threshold = cand_[0].first + std::log(p_.min_p);
    size_t keep = 1;
    while (keep < cand_.size() && cand_[keep].first >= threshold) ++keep;
    cand_.resize(keep);
  }
  std::vector<double> p = probs(p_.temperature);
  std::discrete_distribution<size_t> dist(p.begin(), p.end());
  return cand_[dist(rng_)].second;
}

}  // namespace lowbit
