// Every fast kernel against its reference (kernels/ref.cc), on random inputs with odd shapes, for every SIMD
// target compiled into the kernels (kernels/hwy_targets.h decides the set) and for 1- and 2-thread pools.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "eval/membw.h"
#include "kernels/half.h"
#include "kernels/kernel_test_util.h"
#include "kernels/ops.h"
// clang-format off
#include "kernels/hwy_targets.h"
#include "hwy/targets.h"
// clang-format on

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lowbit::kernels {
namespace {

using kernel_test::random_floats;
using kernel_test::scaled_error;

// Runs f once per SIMD target compiled into the kernels and supported by this CPU, forcing dynamic dispatch
// to that target; restores normal dispatch afterwards.
template <class F>
void ForEachTarget(F&& f) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    SCOPED_TRACE(std::string("target ") + hwy::TargetName(target));
    EXPECT_STREQ(simd_target_name(), hwy::TargetName(target));
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

const char* type_name(WeightType wt) {
  switch (wt) {
    case WeightType::F32:
      return "F32";
    case WeightType::F16:
      return "F16";
    case WeightType::BF16:
      return "BF16";
  }
  return "?";
}

// Random weights stored as `wt` (bytes).
std::vector<uint8_t> make_weights(WeightType wt, size_t n, uint32_t seed) {
  const std::vector<float> f = random_floats(n, seed);
  std::vector<uint8_t> out(n * weight_type_bytes(wt));
  switch (wt) {
    case WeightType::F32:
      std::memcpy(out.data(), f.data(), n * 4);
      break;
    case WeightType::F16:
      f32_to_f16(f.data(), reinterpret_cast<uint16_t*>(out.data()), n);
      break;
    case WeightType::BF16:
      f32_to_bf16(f.data(), reinterpret_cast<uint16_t*>(out.data()), n);
      break;
  }
  return out;
}

TEST(Kernels, TargetsIncludeBestAndFallback) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (int64_t t : targets) names += std::string(hwy::TargetName(t)) + " ";
  std::printf("kernels: compiled+supported targets: %s; dispatched: %s\n", names.c_str(), simd_target_name());
  EXPECT_STREQ(simd_target_name(), hwy::TargetName(targets.front()));
  EXPECT_EQ(targets.back(), HWY_STATIC_TARGET);  // the portable fallback is always compiled in
}

double g_worst_matmul_error[3] = {0, 0, 0};  // per weight type, reported by the tests

// The row-major W in `layout`.
std::vector<uint8_t> in_layout(WeightType wt, const std::vector<uint8_t>& W, size_t rows, size_t cols,
                               DenseLayout layout) {
  if (layout == DenseLayout::Rows) return W;
  std::vector<uint8_t> out(W.size());
  dense_rows_to_tiles(weight_type_bytes(wt), W.data(), rows, cols, out.data(), 0, dense_groups(rows));
  return out;
}

void check_matmul(ThreadPool& pool, WeightType wt, size_t rows, size_t cols, size_t n_tokens, uint32_t seed,
                  DenseLayout layout = DenseLayout::Rows) {
  const std::vector<uint8_t> W = make_weights(wt, rows * cols, seed);
  const std::vector<float> x = random_floats(n_tokens * cols, seed + 1);
  std::vector<float> want(rows * n_tokens);
  ref::matmul(wt, W.data(), rows, cols, x.data(), n_tokens, want.data());
  const std::vector<uint8_t> Wl = in_layout(wt, W, rows, cols, layout);
  ForEachTarget([&] {
    std::vector<float> got(rows * n_tokens, std::numeric_limits<float>::quiet_NaN());
    matmul(pool, wt, Wl.data(), rows, cols, x.data(), n_tokens, got.data(), layout);
    const double err = scaled_error(got, want);
    double& worst = g_worst_matmul_error[static_cast<int>(wt)];
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-5) << type_name(wt) << " rows " << rows << " cols " << cols << " tokens " << n_tokens
                         << " threads " << pool.size() << (layout == DenseLayout::Tiles ? " tiles" : " rows");
  });
}

TEST(Kernels, MatmulOddShapes) {
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 1;
  for (WeightType wt : {WeightType::F32, WeightType::F16, WeightType::BF16})
    for (size_t rows : {1, 3, 17, 67})
      for (size_t cols : {1, 5, 33, 67, 577})
        for (size_t n : {1, 2, 3, 7, 17, 130}) {
          check_matmul(pool1, wt, rows, cols, n, seed);
          check_matmul(pool2, wt, rows, cols, n, seed);
          ++seed;
        }
  std::printf("worst scaled matmul error: F32 %.2e F16 %.2e BF16 %.2e\n", g_worst_matmul_error[0],
              g_worst_matmul_error[1], g_worst_matmul_error[2]);
}

// The tile layout: whole groups only, groups plus tail rows, tail rows only; every token count of the tile
// kernel's chunks (1-4) and of the outer-product form.
TEST(Kernels, MatmulTiledOddShapes) {
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 500;
  for (WeightType wt : {WeightType::F32, WeightType::F16, WeightType::BF16})
    for (size_t rows : {17, 32, 67, 96})
      for (size_t cols : {1, 5, 67, 577})
        for (size_t n : {1, 2, 3, 4, 5, 7, 17, 130}) {
          check_matmul(pool1, wt, rows, cols, n, seed, DenseLayout::Tiles);
          check_matmul(pool2, wt, rows, cols, n, seed, DenseLayout::Tiles);
          ++seed;
        }
}

// bf16 × bf16 prefill against its definition (activations rounded to bf16, then exact products; f16 weights
// rounded to bf16 first), in the layout this CPU's kernel takes (x86 AVX512-BF16: groups; aarch64 BF16: rows):
// whole groups / panels, a tail, odd and even row lengths, partial and full register tiles, odd token counts.
TEST(Kernels, MatmulBf16DotOddShapes) {
  DenseLayout layout = DenseLayout::Tiles;
  if (!matmul_bf16_dot_available(layout)) layout = DenseLayout::Rows;
  if (!matmul_bf16_dot_available(layout)) GTEST_SKIP() << "no bf16 × bf16 kernel on this CPU";
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 900;
  for (WeightType wt : {WeightType::BF16, WeightType::F16}) {
    double worst = 0;
    for (size_t rows : {1, 17, 32, 67, 96})
      for (size_t cols : {1, 2, 5, 67, 578})
        for (size_t n : {1, 8, 12, 13, 30}) {
          const std::vector<uint8_t> W = make_weights(wt, rows * cols, seed);
          const std::vector<float> x = random_floats(n * cols, seed + 1);
          // The definition takes bf16 weights: f16 ones rounded (nearest even) through their fp32 values.
          std::vector<uint16_t> wb(rows * cols);
          std::memcpy(wb.data(), W.data(), wb.size() * 2);
          if (wt == WeightType::F16)
            for (uint16_t& h : wb) h = f16_to_bf16_inline(h);
          std::vector<float> want(rows * n);
          ref::matmul_bf16_acts(wb.data(), rows, cols, x.data(), n, want.data());
          const std::vector<uint8_t> T = in_layout(wt, W, rows, cols, layout);
          for (ThreadPool* pool : {&pool1, &pool2}) {
            std::vector<float> got(rows * n, std::numeric_limits<float>::quiet_NaN());
            matmul_bf16_dot(*pool, wt, reinterpret_cast<const uint16_t*>(T.data()), layout, rows, cols, x.data(), n,
                            got.data());
            const double err = scaled_error(got, want);
            worst = std::max(worst, err);
            EXPECT_LE(err, 1e-5) << (wt == WeightType::F16 ? "f16" : "bf16") << " rows " << rows << " cols " << cols
                                 << " tokens " << n;
          }
          ++seed;
        }
    std::printf("worst scaled bf16-dot matmul error, %s weights: %.2e\n", wt == WeightType::F16 ? "f16" : "bf16",
                worst);
  }
}

TEST(Kernels, DenseIndexMatchesTileRepack) {
  const size_t rows = 70, cols = 9;
  std::vector<uint16_t> W(rows * cols), T(rows * cols, 0xffff);
  for (size_t i = 0; i < W.size(); ++i) W[i] = static_cast<uint16_t>(i);
  dense_rows_to_tiles(2, W.data(), rows, cols, T.data(), 0, rows / kDenseTileRows);
  for (size_t r = 0; r < 64; ++r)
    for (size_t k = 0; k < cols; ++k) {
      const size_t at = dense_index(DenseLayout::Tiles, rows, cols, r, k);
      ASSERT_EQ(at, (r / 32) * 32 * cols + k * 32 + r % 32);
      ASSERT_EQ(T[at], W[r * cols + k]) << "row " << r << " col " << k;
    }
  for (size_t r = 64; r < rows; ++r) EXPECT_EQ(dense_index(DenseLayout::Tiles, rows, cols, r, 3), r * cols + 3);
  for (size_t i = 64 * cols; i < T.size(); ++i) EXPECT_EQ(T[i], 0xffff);  // group 2 (the tail) not asked for
  ASSERT_EQ(dense_groups(rows), 3u);
  dense_rows_to_tiles(2, W.data(), rows, cols, T.data(), 2, 3);  // the partial last group: copied as rows
  for (size_t i = 64 * cols; i < T.size(); ++i) EXPECT_EQ(T[i], W[i]);
}

// Long rows: several token-panel blocks per row block (the packed panels exceed the L2 block size), row
// counts that leave partial tiles on both threads.
TEST(Kernels, MatmulLongRows) {
  ThreadPool pool2(2);
  for (WeightType wt : {WeightType::F32, WeightType::BF16}) {
    check_matmul(pool2, wt, 45, 3001, 101, 77);
    check_matmul(pool2, wt, 45, 3001, 4, 78);
    check_matmul(pool2, wt, 45, 3001, 101, 79, DenseLayout::Tiles);
    check_matmul(pool2, wt, 45, 3001, 1, 80, DenseLayout::Tiles);
  }
}

double g_worst_attention_error = 0;

void check_attention(ThreadPool& pool, size_t n_tokens, size_t pos0, size_t n_heads, size_t n_kv, size_t hd,
                     uint32_t seed) {
  const size_t kv_stride = n_kv * hd + 3;  // padded rows exercise the stride
  const size_t n_ctx = pos0 + n_tokens;
  const std::vector<float> q = random_floats(n_tokens * n_heads * hd, seed, -2.0f, 2.0f);
  const std::vector<float> k = random_floats(n_ctx * kv_stride, seed + 1, -2.0f, 2.0f);
  const std::vector<float> v = random_floats(n_ctx * kv_stride, seed + 2);
  std::vector<float> want(n_tokens * n_heads * hd);
  ref::attention(q.data(), n_tokens, pos0, k.data(), v.data(), kv_stride, n_heads, n_kv, hd, want.data());
  // An f16 cache: the reference runs on the same values widened back to fp32.
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  f32_to_f16(k.data(), k16.data(), k.size());
  f32_to_f16(v.data(), v16.data(), v.size());
  std::vector<float> k16f(k.size()), v16f(v.size()), want16(want.size());
  for (size_t i = 0; i < k.size(); ++i) k16f[i] = f16_to_f32(k16[i]), v16f[i] = f16_to_f32(v16[i]);
  ref::attention(q.data(), n_tokens, pos0, k16f.data(), v16f.data(), kv_stride, n_heads, n_kv, hd, want16.data());
  // The same cache head-major ([kv head][pos][head_dim], heads padded apart), as the Session holds it.
  const size_t head_stride = (n_ctx + 2) * hd;
  std::vector<float> khm(n_kv * head_stride), vhm(n_kv * head_stride);
  for (size_t g = 0; g < n_kv; ++g)
    for (size_t j = 0; j < n_ctx; ++j)
      for (size_t d = 0; d < hd; ++d) {
        khm[g * head_stride + j * hd + d] = k[j * kv_stride + g * hd + d];
        vhm[g * head_stride + j * hd + d] = v[j * kv_stride + g * hd + d];
      }
  std::vector<float> want_hm(want.size());
  ref::attention(q.data(), n_tokens, pos0, khm.data(), vhm.data(), hd, n_heads, n_kv, hd, want_hm.data(), head_stride);
  EXPECT_EQ(want_hm, want);  // the reference reads the same numbers in the same order
  const size_t scale_head_stride = n_ctx + 5;
  std::vector<int8_t> k8(khm.size()), v8(vhm.size());
  std::vector<float> ks(n_kv * scale_head_stride), vs(ks.size()), k8f(khm.size()), v8f(vhm.size());
  for (size_t g = 0; g < n_kv; ++g)
    for (size_t j = 0; j < n_ctx; ++j) {
      const size_t at = g * head_stride + j * hd, si = g * scale_head_stride + j;
      ks[si] = quantize_kv_int8(khm.data() + at, hd, k8.data() + at);
      vs[si] = quantize_kv_int8(vhm.data() + at, hd, v8.data() + at);
      for (size_t d = 0; d < hd; ++d) k8f[at + d] = k8[at + d] * ks[si], v8f[at + d] = v8[at + d] * vs[si];
    }
  const KVCacheScales sc8{ks.data(), vs.data(), 1, scale_head_stride};
  // With an int8 cache the queries are rounded too, per (token, head) vector.
  std::vector<float> q8f(q.size());
  std::vector<int8_t> q8(hd);
  for (size_t r = 0; r < n_tokens * n_heads; ++r) {
    const float qs = quantize_kv_int8(q.data() + r * hd, hd, q8.data());
    for (size_t d = 0; d < hd; ++d) q8f[r * hd + d] = q8[d] * qs;
  }
  std::vector<float> want8(want.size());
  ref::attention(q8f.data(), n_tokens, pos0, k8f.data(), v8f.data(), hd, n_heads, n_kv, hd, want8.data(),
                 head_stride);
  EXPECT_LE(scaled_error(want8, want), 0.05) << "int8 rounding";  // (a sanity bound, not the kernel's accuracy)
  ForEachTarget([&] {
    std::vector<float> got_hm(want.size(), std::numeric_limits<float>::quiet_NaN());
    attention(pool, q.data(), n_tokens, pos0, khm.data(), vhm.data(), hd, n_heads, n_kv, hd, got_hm.data(), head_stride);
    EXPECT_LE(scaled_error(got_hm, want), 1e-5) << "head-major, tokens " << n_tokens << " pos0 " << pos0;
    std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
    attention(pool, q.data(), n_tokens, pos0, k.data(), v.data(), kv_stride, n_heads, n_kv, hd, got.data());
    const double err = scaled_error(got, want);
    g_worst_attention_error = std::max(g_worst_attention_error, err);
    EXPECT_LE(err, 1e-5) << "tokens " << n_tokens << " pos0 " << pos0 << " heads " << n_heads << "/" << n_kv
                         << " head_dim " << hd << " threads " << pool.size();
    // An int8 cache, head-major with per-vector scales ([kv head][pos], heads padded apart): the reference runs
    // on codes × scales.
    // With and without the int8 dot product scores (AVX512-VNNI; sdot on Arm).
    for (bool int8_dot : {true, false}) {
      attention_allow_vnni_for_test(int8_dot);
      std::vector<float> got8(want.size(), std::numeric_limits<float>::quiet_NaN());
      attention(pool, q.data(), n_tokens, pos0, k8.data(), v8.data(), sc8, hd, n_heads, n_kv, hd, got8.data(),
                head_stride);
      const double err8 = scaled_error(got8, want8);
      g_worst_attention_error = std::max(g_worst_attention_error, err8);
      EXPECT_LE(err8, 1e-5) << "int8 cache, int8 dot " << int8_dot << " tokens " << n_tokens << " pos0 " << pos0
                            << " heads " << n_heads << "/" << n_kv << " head_dim " << hd << " threads "
                            << pool.size();
    }
    attention_allow_vnni_for_test(true);
    std::vector<float> got16(want.size(), std::numeric_limits<float>::quiet_NaN());
    attention(pool, q.data(), n_tokens, pos0, k16.data(), v16.data(), kv_stride, n_heads, n_kv, hd, got16.data());
    const double err16 = scaled_error(got16, want16);
    g_worst_attention_error = std::max(g_worst_attention_error, err16);
    EXPECT_LE(err16, 1e-5) << "f16 cache, tokens " << n_tokens << " pos0 " << pos0 << " heads " << n_heads << "/"
                           << n_kv << " head_dim " << hd << " threads " << pool.size();
  });
}

TEST(Kernels, Attention) {
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 100;
  for (ThreadPool* pool : {&pool1, &pool2})
    for (size_t hd : {64, 17})
      for (size_t n_tokens : {1, 5})
        for (size_t pos0 : {0, 37}) check_attention(*pool, n_tokens, pos0, 9, 3, hd, seed++);
  check_attention(pool2, 3, 10, 4, 4, 128, seed++);  // plain multi-head, head_dim 128
  check_attention(pool2, 2, 5, 2, 1, 1, seed++);     // head_dim 1
  // Longer contexts: with 2 threads, decode splits the keys into chunks that are merged afterwards.
  check_attention(pool2, 1, 2000, 9, 3, 64, seed++);
  check_attention(pool1, 1, 2000, 9, 3, 64, seed++);
  check_attention(pool2, 2, 600, 9, 3, 17, seed++);
  check_attention(pool2, 3, 700, 10, 2, 40, seed++);  // group of 5 heads: processed as 4 + 1
  check_attention(pool2, 6, 3, 10, 2, 40, seed++);
  std::printf("worst scaled attention error: %.2e\n", g_worst_attention_error);
}

TEST(Kernels, QuantizeKvInt8) {
  const std::vector<float> x = random_floats(67, 5, -3.0f, 3.0f);
  std::vector<int8_t> q(x.size());
  const float s = quantize_kv_int8(x.data(), x.size(), q.data());
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_FLOAT_EQ(s, amax / 127.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(q[i] * s - x[i]), 0.5f * s * 1.0001f) << i;  // within half a step
    EXPECT_LE(std::abs(int(q[i])), 127);
  }
  std::vector<float> zeros(9, 0.0f);
  EXPECT_EQ(quantize_kv_int8(zeros.data(), zeros.size(), q.data()), 0.0f);
  for (size_t i = 0; i < zeros.size(); ++i) EXPECT_EQ(q[i], 0);
  std::vector<float> bad(9, 1.0f);
  bad[4] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(quantize_kv_int8(bad.data(), bad.size(), q.data())));  // the NaN reaches the output
}

TEST(Kernels, Rmsnorm) {
  ForEachTarget([&] {
    for (size_t n : {1, 5, 33, 67, 576, 1001}) {
      const std::vector<float> x = random_floats(n, uint32_t(n), -3.0f, 3.0f);
      const std::vector<float> w = random_floats(n, uint32_t(n) + 1, 0.5f, 1.5f);
      std::vector<float> want(n), got(n);
      ref::rmsnorm(x.data(), w.data(), want.data(), n, 1e-5f);
      rmsnorm(x.data(), w.data(), got.data(), n, 1e-5f);
      EXPECT_LE(scaled_error(got, want), 1e-6) << "n " << n;
      std::vector<float> inplace = x;  // y may alias x
      rmsnorm(inplace.data(), w.data(), inplace.data(), n, 1e-5f);
      EXPECT_LE(scaled_error(inplace, want), 1e-6) << "in place, n " << n;
    }
  });
}

TEST(Kernels, Swiglu) {
  ForEachTarget([&] {
    for (size_t n : {1, 5, 33, 67, 1536, 1001}) {
      std::vector<float> g = random_floats(n, uint32_t(n) + 7, -12.0f, 12.0f);
      const std::vector<float> u = random_floats(n, uint32_t(n) + 8, -2.0f, 2.0f);
      if (n > 4) {
        g[0] = -100.0f;  // exp(-g) overflows
        g[1] = 100.0f;
        g[2] = 0.0f;
        g[3] = -88.5f;
      }
      std::vector<float> want(n), got(n);
      ref::swiglu(g.data(), u.data(), want.data(), n);
      swiglu(g.data(), u.data(), got.data(), n);
      for (size_t i = 0; i < n; ++i)
        EXPECT_NEAR(got[i], want[i], 2e-6 * std::max(1.0f, std::fabs(want[i]))) << "i " << i << " g " << g[i];
    }
  });
}

TEST(Kernels, Rope) {
  for (size_t rot : {64, 32}) {
    for (size_t pos : {0, 1, 7, 1000, 8191}) {
      const size_t n_heads = 3, hd = 64;
      std::vector<float> want = random_floats(n_heads * hd, uint32_t(pos) + 5);
      std::vector<float> got = want, orig = want;
      ref::rope(want.data(), n_heads, hd, rot, pos, 10000.0f);
      rope(got.data(), n_heads, hd, rot, pos, 10000.0f);
      EXPECT_LE(scaled_error(got, want), 1e-6) << "pos " << pos;
      for (size_t h = 0; h < n_heads; ++h) {
        for (size_t i = rot; i < hd; ++i) EXPECT_EQ(got[h * hd + i], orig[h * hd + i]);  // not rotated
        // The first pair rotates by exactly pos radians (theta_0 = pos).
        const float c = std::cos(float(pos)), s = std::sin(float(pos));
        const float x0 = orig[h * hd], x1 = orig[h * hd + 1];
        EXPECT_FLOAT_EQ(got[h * hd], x0 * c - x1 * s);
        EXPECT_FLOAT_EQ(got[h * hd + 1], x0 * s + x1 * c);
      }
      if (pos == 0) {
        EXPECT_EQ(got, orig);
      }
    }
  }
}

// Nearest-even rounding of a finite float onto a grid given its two neighbours (in bits) lo < hi in
// magnitude; hi_value may stand for the overflow boundary.
uint16_t round_between(double x, uint16_t lo, double lo_value, uint16_t hi, double hi_value) {
  const double dlo = std::fabs(x - lo_value), dhi = std::fabs(hi_value - x);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

// Independent (slow, search-based) f32 -> f16 rounding.
uint16_t slow_f16(float f) {
  if (std::isnan(f)) return 0x7E00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(double(f));
  // Largest half <= a, by scanning the positive encodings (monotonic in bits).
  uint16_t lo = 0;
  for (int step = 1 << 14; step > 0; step >>= 1)
    if (lo + step <= 0x7BFF && double(half_to_f32(uint16_t(lo + step))) <= a) lo = uint16_t(lo + step);
  if (lo == 0x7BFF) {
    const double hi_value = 65536.0;  // the rounding boundary to inf behaves like the next power of two
    if (a >= hi_value) return sign | 0x7C00;
    return sign | round_between(a, 0x7BFF, 65504.0, 0x7C00, hi_value);
  }
  return sign | round_between(a, lo, half_to_f32(lo), uint16_t(lo + 1), half_to_f32(uint16_t(lo + 1)));
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("f16c"))) uint16_t hw_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#endif

TEST(Kernels, HalfConversions) {
  // Every half value round-trips (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    uint16_t back;
    f32_to_f16(&f, &back, 1);
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_EQ(back & 0x7C00, 0x7C00);
      EXPECT_NE(back & 0x3FF, 0);
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
  // Random floats of every magnitude, halfway points and specials, against a search-based rounding.
  std::mt19937 rng(5);
  std::vector<float> xs;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t bits = (rng() & 0x80000000u) | ((96u + rng() % 50u) << 23) | (rng() & 0x7FFFFFu);
    xs.push_back(bits_f32(bits));
  }
  for (uint32_t h = 0; h < 0x7BFF; h += 7) {
    xs.push_back(0.5f * (half_to_f32(uint16_t(h)) + half_to_f32(uint16_t(h + 1))));  // ties
    xs.push_back(-half_to_f32(uint16_t(h)));
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e6f, 6e-8f, 2.9802322e-8f, 2.98e-8f, 1e-10f})
    xs.push_back(f);
  xs.push_back(std::numeric_limits<float>::infinity());
  xs.push_back(-std::numeric_limits<float>::infinity());
  std::vector<uint16_t> got(xs.size());
  f32_to_f16(xs.data(), got.data(), xs.size());
#if defined(__x86_64__) || defined(__i386__)
  const bool have_f16c = __builtin_cpu_supports("f16c");
#endif
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_EQ(got[i], slow_f16(xs[i])) << xs[i];
#if defined(__x86_64__) || defined(__i386__)
    if (have_f16c) {
      EXPECT_EQ(got[i], hw_f16(xs[i])) << xs[i];
    }
#endif
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  uint16_t hn;
  f32_to_f16(&nan, &hn, 1);
  EXPECT_TRUE(std::isnan(f16_to_f32(hn)));
}

TEST(Kernels, Bf16Conversions) {
  std::mt19937 rng(9);
  std::vector<float> xs;
  for (int i = 0; i < 100000; ++i) xs.push_back(bits_f32(rng()));
  for (float f : {0.0f, -0.0f, 1.0f, 3.0e38f, 3.3961775e38f, 3.4028235e38f, 1e-40f, -1e-45f}) xs.push_back(f);
  xs.push_back(bits_f32(0x3F808000u));  // tie, even below
  xs.push_back(bits_f32(0x3F818000u));  // tie, odd below
  xs.push_back(std::numeric_limits<float>::infinity());
  xs.push_back(-std::numeric_limits<float>::infinity());
  std::vector<uint16_t> got(xs.size());
  f32_to_bf16(xs.data(), got.data(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const float f = xs[i];
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(got[i])));
      continue;
    }
    if (std::isinf(f)) {
      EXPECT_EQ(got[i], uint16_t(f32_bits(f) >> 16));
      continue;
    }
    const uint32_t b = f32_bits(f);
    const uint16_t lo = uint16_t(b >> 16), hi = uint16_t(lo + 1);
    const double lo_value = std::fabs(double(bf16_to_f32(lo)));
    const double hi_value = (hi & 0x7F80) == 0x7F80 ? std::ldexp(1.0, 128) : std::fabs(double(bf16_to_f32(hi)));
    EXPECT_EQ(got[i], round_between(std::fabs(double(f)), lo, lo_value, hi, hi_value)) << f;
    EXPECT_EQ(bf16_to_f32(got[i]), bits_f32(uint32_t(got[i]) << 16));
  }
}

// Smoke test only (timings are for the benchmark): a small buffer, every thread count path.
TEST(Kernels, ReadBandwidthProbeRuns) {
  ThreadPool pool1(1), pool2(2);
  EXPECT_GT(measure_read_bandwidth(pool1, size_t{4} << 20, 1), 0.0);
  EXPECT_GT(measure_read_bandwidth(pool2, size_t{4} << 20 | 12345, 2), 0.0);
}

}  // namespace
}  // namespace lowbit::kernels
