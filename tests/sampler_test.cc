// Sampler: greedy is argmax, each filter keeps the tokens it should, seeds make runs repeatable, and the
// empirical distribution follows the softmax at the given temperature.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "lowbit/error.h"
#include "lowbit/sampler.h"

namespace lowbit {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1.0f};

SamplerParams plain(float temp) {
  SamplerParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 123;
  return p;
}

std::set<int32_t> support(SamplerParams p, int draws = 4000) {
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(s.sample(kLogits.data(), kLogits.size()));
  return seen;
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(plain(0.0f));
  EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()), 1);
  EXPECT_EQ(argmax(kLogits.data(), kLogits.size()), 1);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplerParams p = plain(1.0f);
  p.top_k = 2;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4}));
  p.top_k = 1;
  EXPECT_EQ(support(p), (std::set<int32_t>{1}));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Softmax of kLogits: p(1) ≈ 0.38, p(4) ≈ 0.35, p(2) ≈ 0.14: top-p 0.5 needs tokens 1 and 4.
  SamplerParams p = plain(1.0f);
  p.top_p = 0.5f;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4}));
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // min-p 0.3: keep tokens with p >= 0.3 * p(1), i.e. logit >= 3 + ln 0.3 ≈ 1.80: tokens 1, 4, 2.
  SamplerParams p = plain(1.0f);
  p.min_p = 0.3f;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 2, 4}));
}

TEST(Sampler, RepetitionPenaltyChangesGreedyChoice) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 1.5f;
  Sampler s(p);
  s.accept(1);  // 3.0 / 1.5 = 2.0 < 2.9
  EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()), 4);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerParams p = plain(1.0f);
  Sampler a(p), b(p);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.sample(kLogits.data(), 6), b.sample(kLogits.data(), 6));
}

TEST(Sampler, FrequenciesFollowSoftmaxAtTemperature) {
  const float temp = 0.7f;
  Sampler s(plain(temp));
  std::map<int32_t, int> count;
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[s.sample(kLogits.data(), kLogits.size())];
  double z = 0;
  for (float l : kLogits) z += std::exp(l / temp);
  for (size_t t = 0; t < kLogits.size(); ++t) {
    double expected = std::exp(kLogits[t] / temp) / z;
    double sd = std::sqrt(expected * (1 - expected) / n);
    EXPECT_NEAR(count[static_cast<int32_t>(t)] / double(n), expected, 5 * sd + 1e-4) << "token " << t;
  }
}

TEST(Sampler, BadParametersAreErrors) {
  SamplerParams p = plain(1.0f);
  p.top_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain(1.0f);
  p.min_p = -0.1f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain(1.0f);
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain(NAN);
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace lowbit
