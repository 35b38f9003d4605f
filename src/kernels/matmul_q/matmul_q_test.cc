// Packed groupwise formats: PackedDesc validation, code layout, ggml repacking (bit-exact), round-to-nearest
// quantization error bounds, the a8 activation quantizer, and every matmul_q code path against ref::matmul_q
// on odd shapes, for every SIMD target compiled into the kernels (and, on AVX3, with and without the
// VNNI/VBMI/GFNI kernels; on NEON, with and without the sdot kernels), with 1- and 2-thread pools.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/ggml_quants.h"
#include "kernels/half.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/tuning.h"
#include "lowbit/error.h"
#include "quant/packed.h"
#include "quant/row_tiles.h"
#include "quant/rtn.h"
// clang-format off
#include "kernels/hwy_targets.h"
#include "hwy/targets.h"
// clang-format on

namespace lowbit {
namespace {

using kernel_test::random_floats;
using kernel_test::random_packed;
using kernel_test::scaled_error;
using kernel_test::typical_output;
using kernels::f32_to_half;
using kernels::half_to_f32;

// The kernel variants ForEachTarget ran (matmul_q_target_name(): "AVX3+VNNI", "NEON+SDOT", "NEON", ...).
std::set<std::string> g_variants_run;

// Runs f once per SIMD target compiled into the kernels and supported by this CPU, and per kernel variant of it
// (on AVX3 with and without VNNI/VBMI/GFNI; on NEON with I8MM + sdot, sdot alone and neither, as far as the CPU
// has them), forcing dynamic dispatch; restores normal dispatch.
template <class F>
void ForEachTarget(F&& f) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    std::set<std::string> names;
    for (auto [vnni, i8mm] : {std::pair{true, true}, std::pair{true, false}, std::pair{false, false}}) {
      kernels::matmul_q_allow_vnni_for_test(vnni);
      kernels::matmul_q_allow_i8mm_for_test(i8mm);
      const std::string name = kernels::matmul_q_target_name();
      // (The same kernels as an earlier round: no VNNI / SDOT / I8MM variant on this target and CPU.)
      if (!names.insert(name).second) continue;
      SCOPED_TRACE("target " + name);
      g_variants_run.insert(name);
      EXPECT_EQ(name.rfind(hwy::TargetName(target), 0), 0u) << name;
      f();
    }
  }
  kernels::matmul_q_allow_vnni_for_test(true);
  kernels::matmul_q_allow_i8mm_for_test(true);
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

std::string describe(const PackedDesc& d) {
  return "bits " + std::to_string(d.bits) + " group " + std::to_string(d.group_size) +
         (d.has_zeros ? " zeros" : " symmetric") +
         (d.act == ActivationMode::DynamicInt8 ? " a8" : " weight-only") + " rows " + std::to_string(d.rows) +
         " cols " + std::to_string(d.cols);
}

// Random codes (uniform over the full range), scales in ±[0.5, 1.5]·2^-6 and mins in [-1, 1]·2^-2 as f16.
// ---------------------------------------------------------------------------------------------------------
// Format

TEST(PackedFormat, ValidateNamesWhatAndField) {
  PackedDesc d;
  d.rows = 4;
  d.cols = 64;
  EXPECT_NO_THROW(d.validate("w"));
  auto expect_error = [](PackedDesc bad, const std::string& needle) {
    try {
      bad.validate("blk.0.attn_q.weight");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("blk.0.attn_q.weight"), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  PackedDesc b = d;
  b.bits = 0;
  expect_error(b, "bit width 0");
  b.bits = 9;
  expect_error(b, "bit width 9");
  b = d;
  b.group_size = 0;
  expect_error(b, "group size is 0");
  b.group_size = 48;
  expect_error(b, "group size 48 does not divide");
  b = d;
  b.rows = 0;
  expect_error(b, "empty");
  b = d;
  b.cols = 0;
  expect_error(b, "empty");
  b = d;
  b.rows = size_t{1} << 60;
  expect_error(b, "too large");
  for (int bits = 1; bits <= 8; ++bits) {
    b = d;
    b.bits = bits;
    b.group_size = 64;
    EXPECT_NO_THROW(b.validate("w"));
  }
}

TEST(PackedFormat, SizesAndLayout) {
  PackedDesc d;
  d.rows = 3;
  d.cols = 70;  // 3 blocks, the last one 6 real columns
  d.group_size = 35;
  for (int bits = 1; bits <= 8; ++bits) {
    d.bits = bits;
    const size_t bb = bits == 8 ? 32 : bits == 4 ? 16 : 4 * bits;
    EXPECT_EQ(d.block_bytes(), bb);
    EXPECT_EQ(d.row_code_bytes(), 3 * bb);
    EXPECT_EQ(d.code_bytes(), 9 * bb);
    EXPECT_EQ(d.n_groups(), 2u);
  }
  // Byte-level layout of each kind of block.
  std::vector<uint8_t> q(32);
  for (size_t j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(j * 7 + 3);
  PackedDesc one;
  one.rows = 1;
  one.cols = 32;
  one.group_size = 32;
  {
    one.bits = 8;
    std::vector<uint8_t> blk(32);
    pack_row_codes(one, q.data(), blk.data());
    for (size_t j = 0; j < 32; ++j) EXPECT_EQ(blk[j], q[j]);
  }
  {
    one.bits = 4;
    std::vector<uint8_t> q4(32), blk(16);
    for (size_t j = 0; j < 32; ++j) q4[j] = q[j] & 15;
    pack_row_codes(one, q4.data(), blk.data());
    for (size_t j = 0; j < 16; ++j) EXPECT_EQ(blk[j], q4[j] | (q4[j + 16] << 4));
  }
  for (int bits : {1, 2, 3, 5, 6, 7}) {
    one.bits = bits;
    std::vector<uint8_t> qb(32), blk(4 * bits);
    for (size_t j = 0; j < 32; ++j) qb[j] = q[j] & ((1 << bits) - 1);
    pack_row_codes(one, qb.data(), blk.data());
    for (int p = 0; p < bits; ++p) {
      uint32_t plane;
      std::memcpy(&plane, blk.data() + 4 * p, 4);  // little-endian host
      for (size_t j = 0; j < 32; ++j) EXPECT_EQ((plane >> j) & 1u, (qb[j] >> p) & 1u) << bits << " " << p;
    }
  }
}

TEST(PackedFormat, CodesRoundTrip) {
  std::mt19937 rng(5);
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t cols : {1, 31, 32, 33, 96, 100}) {
      PackedDesc d;
      d.bits = bits;
      d.rows = 1;
      d.cols = cols;
      d.group_size = cols;
      std::vector<uint8_t> q(cols), packed(d.row_code_bytes(), 0xAB), back(d.n_blocks() * 32);
      for (auto& c : q) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      pack_row_codes(d, q.data(), packed.data());
      unpack_row_codes(d, packed.data(), back.data());
      for (size_t k = 0; k < cols; ++k) ASSERT_EQ(back[k], q[k]) << bits << " " << cols << " " << k;
      for (size_t k = cols; k < back.size(); ++k) ASSERT_EQ(back[k], 0) << "padding";
      for (size_t k = 0; k < cols; ++k) ASSERT_EQ(get_code(d, packed.data(), k), q[k]);
    }
  }
}

TEST(PackedFormat, DequantizeRow) {
  PackedDesc d;
  d.bits = 3;
  d.rows = 2;
  d.cols = 64;
  d.group_size = 32;
  for (bool zeros : {true, false}) {
    d.has_zeros = zeros;
    const PackedStorage s = random_packed(d, 9);
    const PackedMatrix m = s.view();
    std::vector<float> w(64);
    dequantize_packed_row(m, 1, w.data());
    for (size_t k = 0; k < 64; ++k) {
      const float dg = half_to_f32(s.scales[2 + k / 32]);
      const int q = static_cast<int>(get_code(d, m.row_codes(1), k));
      const float want = zeros ? dg * float(q) + half_to_f32(s.mins[2 + k / 32]) : dg * float(q - 4);
      EXPECT_EQ(w[k], want);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// ggml repacking

TEST(PackedFormat, FromGgmlIsBitExact) {
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0}) {
    for (auto [rows, cols] : {std::pair<size_t, size_t>{1, 32}, {3, 96}, {7, 576}}) {
      std::vector<float> w = random_floats(rows * cols, uint32_t(rows * cols), -2.0f, 3.0f);
      for (size_t k = 0; k < 32; ++k) w[k] = 0.0f;  // an all-zero block
      const std::vector<uint8_t> blocks = quantize_ggml(type, w.data(), int64_t(rows * cols));
      const PackedStorage s = pack_from_ggml(type, blocks.data(), rows, cols, ActivationMode::DynamicInt8);
      EXPECT_EQ(s.desc.act, ActivationMode::DynamicInt8);
      EXPECT_EQ(s.desc.group_size, 32u);
      std::vector<float> want(rows * cols), got(cols);
      dequantize_ggml(type, blocks.data(), want.data(), int64_t(rows * cols));
      for (size_t r = 0; r < rows; ++r) {
        dequantize_packed_row(s.view(), r, got.data());
        for (size_t k = 0; k < cols; ++k) {
          uint32_t a, b;
          std::memcpy(&a, &got[k], 4);
          std::memcpy(&b, &want[r * cols + k], 4);
          ASSERT_EQ(a, b) << ggml_type_name(type) << " row " << r << " col " << k << ": " << got[k] << " vs "
                          << want[r * cols + k];
        }
      }
    }
  }
  std::vector<uint8_t> dummy(1000);
  EXPECT_THROW(pack_from_ggml(GgmlType::Q4_0, dummy.data(), 1, 48), Error);
  try {
    pack_from_ggml(GgmlType::Q5_0, dummy.data(), 1, 32);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_0"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Round-to-nearest quantization

TEST(Rtn, AsymmetricErrorBound) {
  ThreadPool pool(2);
  for (int bits = 1; bits <= 8; ++bits) {
    PackedDesc d;
    d.bits = bits;
    d.rows = 5;
    d.cols = 192;
    d.group_size = 64;
    d.has_zeros = true;
    std::vector<float> w = random_floats(d.rows * d.cols, 40 + bits, -1.5f, 0.7f);
    for (size_t k = 0; k < 64; ++k) w[k] = 0.0f;           // all-zero group
    for (size_t k = 64; k < 128; ++k) w[k] = 0.25f;        // constant group
    const PackedStorage s = quantize_rtn(pool, w.data(), d);
    std::vector<float> row(d.cols);
    for (size_t r = 0; r < d.rows; ++r) {
      dequantize_packed_row(s.view(), r, row.data());
      for (size_t g = 0; g < d.n_groups(); ++g) {
        float mn = 1e30f, mx = -1e30f;
        for (size_t k = g * 64; k < g * 64 + 64; ++k) {
          mn = std::min(mn, w[r * d.cols + k]);
          mx = std::max(mx, w[r * d.cols + k]);
        }
        const float dg = half_to_f32(s.scales[r * 3 + g]), mg = half_to_f32(s.mins[r * 3 + g]);
        const float d_exact = (mx - mn) / float((1 << bits) - 1);
        // d/2, plus what the f16 rounding of d and m can shift the grid by at its ends.
        const float bound = dg / 2 + std::fabs(mg - mn) + float((1 << bits) - 1) * std::fabs(dg - d_exact) + 1e-7f;
        for (size_t k = g * 64; k < g * 64 + 64; ++k)
          ASSERT_LE(std::fabs(row[k] - w[r * d.cols + k]), bound) << "bits " << bits << " row " << r << " col " << k;
      }
    }
    dequantize_packed_row(s.view(), 0, row.data());
    for (size_t k = 0; k < 64; ++k) EXPECT_EQ(row[k], 0.0f);
    for (size_t k = 64; k < 128; ++k) EXPECT_EQ(row[k], half_to_f32(f32_to_half(0.25f)));
  }
}

TEST(Rtn, SymmetricErrorBound) {
  ThreadPool pool(1);
  for (int bits = 1; bits <= 8; ++bits) {
    PackedDesc d;
    d.bits = bits;
    d.rows = 4;
    d.cols = 96;
    d.group_size = 32;
    d.has_zeros = false;
    std::vector<float> w = random_floats(d.rows * d.cols, 60 + bits);
    for (size_t k = 0; k < 32; ++k) w[k] = 0.0f;  // all-zero group
    const PackedStorage s = quantize_rtn(pool, w.data(), d);
    std::vector<float> row(d.cols);
    const int zero = 1 << (bits - 1);
    for (size_t r = 0; r < d.rows; ++r) {
      dequantize_packed_row(s.view(), r, row.data());
      for (size_t g = 0; g < d.n_groups(); ++g) {
        float amax = 0, mx = 0;
        for (size_t k = g * 32; k < g * 32 + 32; ++k)
          if (std::fabs(w[r * d.cols + k]) > amax) amax = std::fabs(w[r * d.cols + k]), mx = w[r * d.cols + k];
        const float dg = half_to_f32(s.scales[r * 3 + g]);
        const float ad = std::fabs(dg), rounding = float(zero) * std::fabs(dg - mx / -float(zero));
        for (size_t k = g * 32; k < g * 32 + 32; ++k) {
          const float v = w[r * d.cols + k], e = std::fabs(row[k] - v);
          // On mx's side the grid reaches |mx| (up to the rounding of d); on the other side only
          // (2^(b-1) - 1)·|d|, so values beyond that clip.
          const bool other_side = (v > 0) != (mx > 0);
          const float reach = other_side ? float(zero - 1) * ad : float(zero) * ad;
          const float bound = std::fabs(v) > reach ? std::fabs(v) - reach + 1e-7f : ad / 2 + rounding + 1e-7f;
          ASSERT_LE(e, std::max(bound, ad / 2 + rounding + 1e-7f))
              << "bits " << bits << " row " << r << " col " << k << " w " << v << " got " << row[k];
        }
      }
    }
    dequantize_packed_row(s.view(), 0, row.data());
    for (size_t k = 0; k < 32; ++k) EXPECT_EQ(row[k], 0.0f);
  }
  // 1 bit symmetric: codes {0, 1} -> {mx, 0}.
  PackedDesc d;
  d.bits = 1;
  d.rows = 1;
  d.cols = 32;
  d.group_size = 32;
  d.has_zeros = false;
  std::vector<float> w(32, 0.1f);
  w[3] = 0.9f;
  w[4] = 0.6f;
  w[5] = -0.5f;
  const PackedStorage s = quantize_rtn(pool, w.data(), d);
  std::vector<float> row(32);
  dequantize_packed_row(s.view(), 0, row.data());
  const float mx = half_to_f32(f32_to_half(0.9f));
  EXPECT_EQ(row[3], mx);
  EXPECT_EQ(row[4], mx);
  EXPECT_EQ(row[5], 0.0f);
  EXPECT_EQ(row[0], 0.0f);
}

TEST(Rtn, SearchNeverWorseAndThreadsAgree) {
  ThreadPool pool1(1), pool2(2);
  for (int bits : {2, 3, 4, 8}) {
    for (bool zeros : {true, false}) {
      PackedDesc d;
      d.bits = bits;
      d.rows = 9;
      d.cols = 256;
      d.group_size = 64;
      d.has_zeros = zeros;
      // Heavy-tailed values (as in real weights) leave room for a better scale than min/max.
      std::vector<float> w = random_floats(d.rows * d.cols, 80 + bits);
      for (float& v : w) v = v * v * v;
      const PackedStorage plain = quantize_rtn(pool1, w.data(), d);
      const PackedStorage plain2 = quantize_rtn(pool2, w.data(), d);
      EXPECT_EQ(plain.codes, plain2.codes);
      EXPECT_EQ(plain.scales, plain2.scales);
      EXPECT_EQ(plain.mins, plain2.mins);
      std::vector<uint8_t> codes(d.code_bytes());
      std::vector<uint16_t> scales(d.scale_count()), mins(d.scale_count());
      quantize_rtn(w.data(), d, codes.data(), scales.data(), mins.data());
      EXPECT_EQ(codes, plain.codes);
      const PackedStorage searched = quantize_rtn(pool2, w.data(), d, RtnOptions{true});
      const double e0 = packed_mse(w.data(), plain.view()), e1 = packed_mse(w.data(), searched.view());
      EXPECT_LE(e1, e0) << "bits " << bits << " zeros " << zeros;
      if (bits <= 4) {
        EXPECT_LT(e1, 0.97 * e0) << "bits " << bits << " zeros " << zeros;
      }
      std::printf("rtn bits %d %s: mse %.3e, with search %.3e\n", bits, zeros ? "asym" : "sym ", e0, e1);
    }
  }
}

TEST(Rtn, RequantizingGgmlGridIsNearlyExact) {
  // Weights that already lie on a Q4_1 / Q4_0 grid come back almost unchanged.
  ThreadPool pool(1);
  const size_t rows = 8, cols = 256;
  const std::vector<float> w0 = random_floats(rows * cols, 123);
  for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q4_0}) {
    const std::vector<uint8_t> blocks = quantize_ggml(type, w0.data(), int64_t(rows * cols));
    std::vector<float> w(rows * cols);
    dequantize_ggml(type, blocks.data(), w.data(), int64_t(rows * cols));
    PackedDesc d;
    d.bits = 4;
    d.rows = rows;
    d.cols = cols;
    d.group_size = 32;
    d.has_zeros = type == GgmlType::Q4_1;
    const PackedStorage s = quantize_rtn(pool, w.data(), d);
    const double e = packed_mse(w.data(), s.view()), e_orig = mse(w.data(), w0.data(), w.size());
    EXPECT_LT(e, 1e-3 * e_orig) << ggml_type_name(type);
    std::printf("re-quantizing %s: mse %.3e (the %s grid's own mse %.3e)\n", ggml_type_name(type).c_str(), e,
                ggml_type_name(type).c_str(), e_orig);
  }
}

TEST(Rtn, OverflowIsAnError) {
  PackedDesc d;
  d.bits = 4;
  d.rows = 1;
  d.cols = 32;
  d.group_size = 32;
  std::vector<float> w(32, 0.0f);
  w[0] = 1e6f;
  ThreadPool pool(2);
  EXPECT_THROW(quantize_rtn(pool, w.data(), d), Error);
}

// ---------------------------------------------------------------------------------------------------------
// a8 activation quantizer: SIMD == scalar reference, bit for bit.

TEST(MatmulQ, ActivationQuantizerMatchesReference) {
  ForEachTarget([&] {
    for (size_t cols : {1, 7, 31, 32, 33, 64, 100, 576}) {
      std::vector<float> x = random_floats(cols, uint32_t(cols), -3.0f, 3.0f);
      if (cols >= 64)
        for (size_t k = 32; k < 64; ++k) x[k] = 0.0f;  // a zero block
      if (cols >= 32) {
        // Exact ties: with amax = 127, x·127/amax = x; halves must round to even.
        x[0] = 127.0f;
        x[1] = 2.5f;
        x[2] = -3.5f;
        x[3] = 0.5f;
      }
      const size_t nb = (cols + 31) / 32;
      std::vector<int8_t> q1(nb * 32, 99), q2(nb * 32, 77);
      std::vector<float> s1(nb), s2(nb);
      std::vector<int32_t> m1(nb), m2(nb);
      kernels::ref::quantize_activations(x.data(), cols, q1.data(), s1.data(), m1.data());
      kernels::quantize_activations(x.data(), cols, q2.data(), s2.data(), m2.data());
      EXPECT_EQ(q1, q2) << cols;
      EXPECT_EQ(0, std::memcmp(s1.data(), s2.data(), nb * 4)) << cols;
      EXPECT_EQ(m1, m2) << cols;
      if (cols >= 32) {
        EXPECT_EQ(q1[1], 2);
        EXPECT_EQ(q1[2], -4);
        EXPECT_EQ(q1[3], 0);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// matmul_q against the reference

double g_worst[2] = {0, 0};  // per activation mode
int g_checks = 0;

void check_matmul_q(ThreadPool& pool1, ThreadPool& pool2, const PackedDesc& d, size_t n_tokens, uint32_t seed) {
  const PackedStorage s = random_packed(d, seed);
  const PackedMatrix W = s.view();
  std::vector<float> x = random_floats(n_tokens * d.cols, seed + 1);
  for (size_t k = 0; k < std::min<size_t>(32, d.cols); ++k) x[k] = 0.0f;  // token 0 starts with a zero block
  std::vector<float> want(d.rows * n_tokens);
  kernels::ref::matmul_q(W, x.data(), n_tokens, want.data());
  const double floor = typical_output(W, x.data(), n_tokens);
  ForEachTarget([&] {
    for (ThreadPool* pool : {&pool1, &pool2}) {
      if (pool->size() > 1 && d.rows < 64) continue;  // (fewer pool dispatches: slow on a busy machine)
      std::vector<float> got(d.rows * n_tokens, std::numeric_limits<float>::quiet_NaN());
      kernels::matmul_q(*pool, W, x.data(), n_tokens, got.data());
      const double err = scaled_error(got, want, floor);
      double& worst = g_worst[static_cast<int>(d.act)];
      worst = std::max(worst, err);
      ++g_checks;
      ASSERT_LE(err, 1e-5) << describe(d) << " tokens " << n_tokens << " threads " << pool->size();
    }
  });
}

struct Shape {
  size_t cols, group;
};
// Group sizes: multiples of 64 (whole zmm pairs per group), odd multiples of 32 (a pair spans two groups),
// and sizes that are not multiples of 32 (16, 48, 33: the generic path; a block holds parts of two groups).
const Shape kShapes[] = {{32, 32},   {32, 16},  {96, 32},  {96, 48},   {96, 96},   {96, 16},   {576, 32},
                         {576, 64},  {576, 48}, {576, 576}, {576, 192}, {160, 32}, {160, 160}, {48, 48},
                         {48, 16},   {33, 33},  {256, 128}, {256, 256}, {256, 64}};
const std::pair<size_t, size_t> kRowsTokens[] = {{1, 1}, {3, 2}, {17, 3},  {67, 5}, {17, 17},
                                                 {67, 1}, {3, 17}, {1, 5}, {67, 17}};

void run_matmul_q_shapes(ActivationMode act, bool zeros) {
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 1000 + 100 * static_cast<uint32_t>(act) + (zeros ? 50 : 0);
  for (int bits = 1; bits <= 8; ++bits)
    for (const Shape& sh : kShapes)
      for (auto [rows, n] : kRowsTokens) {
        PackedDesc d;
        d.bits = bits;
        d.group_size = sh.group;
        d.has_zeros = zeros;
        d.act = act;
        d.rows = rows;
        d.cols = sh.cols;
        check_matmul_q(pool1, pool2, d, n, seed++);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(MatmulQ, WeightOnlyAsymmetric) { run_matmul_q_shapes(ActivationMode::WeightOnly, true); }
TEST(MatmulQ, WeightOnlySymmetric) { run_matmul_q_shapes(ActivationMode::WeightOnly, false); }
TEST(MatmulQ, DynamicInt8Asymmetric) { run_matmul_q_shapes(ActivationMode::DynamicInt8, true); }
TEST(MatmulQ, DynamicInt8Symmetric) {
  run_matmul_q_shapes(ActivationMode::DynamicInt8, false);
  std::string variants;
  for (const std::string& v : g_variants_run) variants += " " + v;
  std::printf("matmul_q: %d checks, worst scaled error: weight-only %.2e, a8 %.2e; kernel variants run:%s\n",
              g_checks, g_worst[0], g_worst[1], variants.c_str());
}

// Long rows and many tokens: several row panels per thread, partial panels, the WeightOnly token-panel blocks.
TEST(MatmulQ, LargerShapes) {
  ThreadPool pool1(1), pool2(2);
  uint32_t seed = 5000;
  for (auto act : {ActivationMode::DynamicInt8, ActivationMode::WeightOnly})
    for (int bits : {2, 4, 8}) {
      PackedDesc d;
      d.bits = bits;
      d.group_size = 128;
      d.act = act;
      d.rows = 45;
      d.cols = 2048;
      check_matmul_q(pool1, pool2, d, 33, seed++);
      d.rows = 100;
      d.group_size = 32;
      d.has_zeros = false;
      check_matmul_q(pool1, pool2, d, 130, seed++);
      check_matmul_q(pool1, pool2, d, 1, seed++);
    }
}

// Every run-time kernel parameter (kernels/tuning.h) gives the reference's result: token blocks that split the
// tokens unevenly, the dot/outer threshold on both sides, coarse and fine row grains.
TEST(MatmulQ, TuningParametersKeepResults) {
  ThreadPool pool1(1), pool2(2);
  const kernels::KernelTuning saved = kernels::kernel_tuning();
  uint32_t seed = 7000;
  for (size_t block : {size_t{0}, size_t{4}, size_t{7}, size_t{16}})
    for (size_t min_tokens : {size_t{2}, size_t{9}})
      for (size_t grain : {size_t{1}, size_t{64}}) {
        kernels::set_kernel_tuning({min_tokens, block, grain});
        for (bool zeros : {false, true}) {
          PackedDesc d;
          d.bits = zeros ? 3 : 4;
          d.group_size = 64;
          d.has_zeros = zeros;
          d.act = ActivationMode::DynamicInt8;
          d.rows = 70;
          d.cols = 192;
          check_matmul_q(pool1, pool2, d, 19, seed++);
          check_matmul_q(pool1, pool2, d, 5, seed++);
          d.act = ActivationMode::WeightOnly;
          check_matmul_q(pool1, pool2, d, 3, seed++);
        }
      }
  kernels::set_kernel_tuning(saved);
}

// Real quantized weights (from ggml blocks) times realistic activations: the a8 result is close to the
// weight-only one (the activation quantization error), and both to fp32 on the dequantized weights.
TEST(MatmulQ, GgmlWeightsEndToEnd) {
  ThreadPool pool(2);
  const size_t rows = 64, cols = 576, n = 3;
  const std::vector<float> w = random_floats(rows * cols, 77);
  const std::vector<float> x = random_floats(n * cols, 78);
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0}) {
    const std::vector<uint8_t> blocks = quantize_ggml(type, w.data(), int64_t(rows * cols));
    std::vector<float> wd(rows * cols);
    dequantize_ggml(type, blocks.data(), wd.data(), int64_t(rows * cols));
    std::vector<float> exact(rows * n, 0.0f);
    for (size_t t = 0; t < n; ++t)
      for (size_t r = 0; r < rows; ++r) {
        double s = 0;
        for (size_t k = 0; k < cols; ++k) s += double(wd[r * cols + k]) * x[t * cols + k];
        exact[t * rows + r] = float(s);
      }
    for (auto act : {ActivationMode::WeightOnly, ActivationMode::DynamicInt8}) {
      const PackedStorage s = pack_from_ggml(type, blocks.data(), rows, cols, act);
      std::vector<float> y(rows * n);
      kernels::matmul_q(pool, s.view(), x.data(), n, y.data());
      const double err = scaled_error(y, exact);
      EXPECT_LE(err, act == ActivationMode::WeightOnly ? 1e-5 : 2e-2) << ggml_type_name(type);
    }
  }
}

// Concurrent calls from two threads (each with its own pool) do not share scratch.
TEST(MatmulQ, ConcurrentCalls) {
  PackedDesc d;
  d.bits = 4;
  d.rows = 70;
  d.cols = 256;
  d.group_size = 64;
  d.act = ActivationMode::DynamicInt8;
  const PackedStorage s = random_packed(d, 42);
  std::vector<std::vector<float>> xs, want;
  for (uint32_t i = 0; i < 2; ++i) {
    xs.push_back(random_floats(5 * d.cols, 300 + i));
    want.emplace_back(5 * d.rows);
    kernels::ref::matmul_q(s.view(), xs[i].data(), 5, want[i].data());
  }
  std::vector<double> errs(2, 0.0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      ThreadPool pool(1);
      for (int it = 0; it < 200; ++it) {
        const size_t n = 1 + (it + i) % 5;
        std::vector<float> y(n * d.rows);
        kernels::matmul_q(pool, s.view(), xs[i].data(), n, y.data());
        std::vector<float> w(want[i].begin(), want[i].begin() + n * d.rows);
        errs[i] = std::max(errs[i], scaled_error(y, w));
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(errs[0], 1e-5);
  EXPECT_LE(errs[1], 1e-5);
}

TEST(MatmulQ, RejectsBadWeights) {
  ThreadPool pool(1);
  PackedDesc d;
  d.rows = 2;
  d.cols = 64;
  d.group_size = 48;
  PackedMatrix W{d, nullptr, nullptr, nullptr};
  std::vector<float> x(64), y(2);
  EXPECT_THROW(kernels::matmul_q(pool, W, x.data(), 1, y.data()), Error);
  W.desc.group_size = 32;
  EXPECT_THROW(kernels::matmul_q(pool, W, x.data(), 1, y.data()), Error);  // missing blobs
}

// ---------------------------------------------------------------------------------------------------------
// Row tiles (quant/row_tiles.h)

std::vector<uint8_t> tiles_of(const PackedMatrix& W) {
  std::vector<uint8_t> t(row_tiles_bytes(W.desc));
  build_row_tiles(W, 0, W.desc.rows / kTileRows, t.data());
  return t;
}

TEST(RowTiles, FitAndSizes) {
  PackedDesc d;
  d.bits = 4;
  d.rows = 48;
  d.cols = 576;
  d.group_size = 64;
  d.act = ActivationMode::DynamicInt8;
  for (bool zeros : {false, true}) {
    d.has_zeros = zeros;
    EXPECT_TRUE(row_tiles_fit(d));
    // The same bytes, rearranged; 9 groups: a symmetric tile's last unit pads its scale line by 32 bytes.
    EXPECT_EQ(row_tiles_bytes(d), d.total_bytes() + (zeros ? 0 : d.rows / kTileRows * 32));
  }
  d.group_size = 32;  // 18 groups: no padding
  d.has_zeros = false;
  EXPECT_EQ(row_tiles_bytes(d), d.total_bytes());
  d.group_size = 64;
  d.has_zeros = true;
  PackedDesc bad = d;
  bad.rows = 40;
  EXPECT_FALSE(row_tiles_fit(bad));
  bad = d;
  bad.bits = 7;
  EXPECT_FALSE(row_tiles_fit(bad));
  for (int bits : {2, 3, 5, 6, 8}) {
    bad.bits = bits;
    EXPECT_TRUE(row_tiles_fit(bad));
    EXPECT_EQ(row_tiles_bytes(bad), bad.total_bytes() + (bad.has_zeros ? 0 : bad.rows / kTileRows * 32));
  }
  bad = d;
  bad.group_size = 48;
  EXPECT_FALSE(row_tiles_fit(bad));
  bad = d;
  bad.act = ActivationMode::WeightOnly;
  EXPECT_FALSE(row_tiles_fit(bad));
}

// Reading a row back from the tiles gives the row layout's floats exactly (embedding lookups of a tiled table).
TEST(RowTiles, DequantizeMatchesRowLayout) {
  uint32_t seed = 9000;
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (bool zeros : {false, true})
      for (const Shape& sh : {Shape{32, 32}, Shape{576, 64}, Shape{576, 192}, Shape{160, 32}, Shape{256, 256}}) {
        PackedDesc d;
        d.bits = bits;
        d.has_zeros = zeros;
        d.act = ActivationMode::DynamicInt8;
        d.rows = 48;
        d.cols = sh.cols;
        d.group_size = sh.group;
        const PackedStorage s = random_packed(d, seed++);
        const std::vector<uint8_t> tiles = tiles_of(s.view());
        PackedMatrix tiled{d, nullptr, nullptr, nullptr, tiles.data()};
        std::vector<float> a(d.cols), b(d.cols);
        for (size_t r = 0; r < d.rows; ++r) {
          dequantize_packed_row(s.view(), r, a.data());
          dequantize_packed_row(tiled, r, b.data());
          ASSERT_EQ(std::memcmp(a.data(), b.data(), d.cols * 4), 0) << describe(d) << " row " << r;
        }
      }
}

// The tiled kernels (the row-layout blobs removed, so nothing else can answer) against the reference, decode
// and prefill token counts, 1 and 2 threads, several tuning settings.
TEST(RowTiles, MatmulMatchesReference) {
  if (!kernels::matmul_q_uses_row_tiles()) GTEST_SKIP() << "no row-tile kernels on " << kernels::matmul_q_target_name();
  ThreadPool pool1(1), pool2(2);
  const kernels::KernelTuning saved = kernels::kernel_tuning();
  uint32_t seed = 9500;
  double worst = 0;
  int checks = 0;
  for (const kernels::KernelTuning& tuning :
       {saved, kernels::KernelTuning{2, 7, 1}, kernels::KernelTuning{9, 0, 64}}) {
    kernels::set_kernel_tuning(tuning);
    for (int bits : {2, 3, 4, 5, 6, 8})
      for (bool zeros : {false, true})
        for (const Shape& sh : {Shape{32, 32}, Shape{96, 96}, Shape{576, 32}, Shape{576, 64}, Shape{576, 192},
                                Shape{160, 32}, Shape{2048, 128}})
          for (auto [rows, n] : {std::pair<size_t, size_t>{16, 1}, {48, 2}, {80, 3}, {16, 4}, {48, 5}, {160, 1},
                                 {80, 7}, {48, 17}, {160, 33}}) {
            PackedDesc d;
            d.bits = bits;
            d.has_zeros = zeros;
            d.act = ActivationMode::DynamicInt8;
            d.rows = rows;
            d.cols = sh.cols;
            d.group_size = sh.group;
            const PackedStorage s = random_packed(d, seed);
            const std::vector<uint8_t> tiles = tiles_of(s.view());
            const PackedMatrix W{d, nullptr, nullptr, nullptr, tiles.data()};
            std::vector<float> x = random_floats(n * d.cols, seed + 1);
            ++seed;
            std::vector<float> want(d.rows * n);
            kernels::ref::matmul_q(s.view(), x.data(), n, want.data());
            const double floor = typical_output(s.view(), x.data(), n);
            for (ThreadPool* pool : {&pool1, &pool2}) {
              std::vector<float> got(d.rows * n, std::numeric_limits<float>::quiet_NaN());
              kernels::matmul_q(*pool, W, x.data(), n, got.data());
              const double err = scaled_error(got, want, floor);
              worst = std::max(worst, err);
              ++checks;
              ASSERT_LE(err, 1e-5) << describe(d) << " tokens " << n << " threads " << pool->size();
            }
          }
  }
  kernels::set_kernel_tuning(saved);
  std::printf("row tiles: %d checks, worst scaled error %.2e\n", checks, worst);
}

TEST(RowTiles, RejectedWhereTheyDoNotFit) {
  ThreadPool pool(1);
  PackedDesc d;
  d.bits = 4;
  d.rows = 16;
  d.cols = 64;
  d.group_size = 32;
  d.act = ActivationMode::WeightOnly;  // no tiles for weight-only matrices
  const PackedStorage s = random_packed(d, 1);
  std::vector<uint8_t> junk(d.total_bytes());
  PackedMatrix W = s.view();
  W.tiles = junk.data();
  std::vector<float> x(64), y(16);
  EXPECT_THROW(kernels::matmul_q(pool, W, x.data(), 1, y.data()), Error);
}

}  // namespace
}  // namespace lowbit
