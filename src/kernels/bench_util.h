// Shared by the kernel benchmarks (*_bench.cc): thread pools, random inputs, and copies of a packed matrix
// enough to stream it from DRAM ("cold" runs cycle through >= kColdBytes of copies; L3 is 32 MiB here).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "kernels/half.h"
#include "lowbit/thread_pool.h"
#include "quant/packed.h"

namespace lowbit::kernels::bench {

inline ThreadPool& pool_of(int n) {
  static ThreadPool p1(1), p2(2);
  return n <= 1 ? p1 : p2;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

constexpr size_t kColdBytes = size_t{128} << 20;

inline size_t copies_for(size_t bytes, bool cold) {
  return cold ? std::max<size_t>(2, (kColdBytes + bytes - 1) / bytes) : 1;
}

// n copies of random codes and small random scales / mins (any byte pattern is a valid code block).
inline std::vector<PackedStorage> make_copies(const PackedDesc& d, size_t n) {
  std::vector<PackedStorage> out;
  std::mt19937 rng(1);
  for (size_t i = 0; i < n; ++i) {
    PackedStorage s(d);
    for (size_t j = 0; j < s.codes.size(); j += 4) {
      const uint32_t v = rng();
      std::memcpy(&s.codes[j], &v, std::min<size_t>(4, s.codes.size() - j));
    }
    for (auto& h : s.scales) h = f32_to_half(0.01f * float(rng() % 100 + 1) / 100.0f);
    for (auto& h : s.mins) h = f32_to_half(-0.05f);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace lowbit::kernels::bench
