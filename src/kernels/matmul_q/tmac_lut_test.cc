// The T-MAC-style LUT decode kernel (tmac_lut.h): its tile layout read back bit by bit, and the kernel against
// ref::matmul_q on odd shapes (1, 2, 3 bits, group sizes 32 / 64 / 96 / 128 / channelwise, symmetric and with
// zeros, 1 and 2 threads, 1-3 tokens, extreme activations and codes). Skipped on CPUs without the ISA.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/matmul_q/tmac_lut.h"
#include "lowbit/error.h"
#include "quant/packed.h"

namespace lowbit {
namespace {

using kernel_test::random_floats;
using kernel_test::random_packed;
using kernel_test::scaled_error;
using kernel_test::typical_output;
using kernels::f32_to_half;

std::vector<uint8_t> lut_tiles_of(const PackedMatrix& W) {
  std::vector<uint8_t> t(kernels::lut_tiles_bytes(W.desc));
  kernels::build_lut_tiles(W, 0, W.desc.rows / kernels::kLutTileRows, t.data());
  return t;
}

TEST(TmacLut, FitAndSizes) {
  PackedDesc d;
  d.act = ActivationMode::DynamicInt8;
  d.rows = 48;
  d.cols = 256;
  d.group_size = 128;
  for (int bits : {1, 2, 3})
    for (bool zeros : {false, true}) {
      d.bits = bits;
      d.has_zeros = zeros;
      EXPECT_TRUE(kernels::lut_tiles_fit(d));
      EXPECT_EQ(kernels::lut_tiles_bytes(d), d.total_bytes());  // the row layout's bytes, rearranged
    }
  PackedDesc bad = d;
  bad.bits = 4;
  EXPECT_FALSE(kernels::lut_tiles_fit(bad));
  bad = d;
  bad.rows = 40;
  EXPECT_FALSE(kernels::lut_tiles_fit(bad));
  bad = d;
  bad.cols = 48;
  bad.group_size = 16;
  EXPECT_FALSE(kernels::lut_tiles_fit(bad));
  bad = d;
  bad.act = ActivationMode::WeightOnly;
  EXPECT_FALSE(kernels::lut_tiles_fit(bad));
}

// Every code's bits are where tmac_lut.h says: chunk (b, p) byte 4r + e, nibble c, bit i.
TEST(TmacLut, LayoutHoldsEveryBit) {
  for (int bits : {1, 2, 3}) {
    PackedDesc d;
    d.act = ActivationMode::DynamicInt8;
    d.bits = bits;
    d.rows = 32;
    d.cols = 96;
    d.group_size = 32;
    d.has_zeros = false;
    const PackedStorage s = random_packed(d, 100 + bits);
    const std::vector<uint8_t> t = lut_tiles_of(s.view());
    const size_t tb = kernels::lut_tile_bytes(d), cb = kernels::lut_tile_code_bytes(d);
    for (size_t row = 0; row < d.rows; ++row) {
      const uint8_t* tile = t.data() + (row / 16) * tb;
      const size_t r = row % 16;
      for (size_t col = 0; col < d.cols; ++col) {
        const uint32_t q = get_code(d, s.view().row_codes(row), col);
        const size_t b = col / 32, j = col % 32, c = j / 16, e = (j % 16) / 4, i = j % 4;
        for (int p = 0; p < bits; ++p) {
          const uint8_t byte = tile[(b * bits + p) * 64 + 4 * r + e];
          ASSERT_EQ((byte >> (4 * c + i)) & 1, (q >> p) & 1) << "row " << row << " col " << col << " plane " << p;
        }
      }
      const auto* dd = reinterpret_cast<const uint16_t*>(tile + cb);
      for (size_t g = 0; g < d.n_groups(); ++g) ASSERT_EQ(dd[g * 16 + r], s.scales[row * d.n_groups() + g]);
    }
  }
}

TEST(TmacLut, MatmulMatchesReference) {
  if (!kernels::lut_kernel_available()) GTEST_SKIP() << "no AVX-512 BW/VBMI/VNNI on this CPU";
  ThreadPool pool1(1), pool2(2);
  struct Shape {
    size_t cols, group;
  };
  uint32_t seed = 7000;
  double worst = 0.0;
  int checks = 0;
  for (int bits : {1, 2, 3})
    for (bool zeros : {false, true})
      for (const Shape& sh : {Shape{32, 32}, Shape{96, 96}, Shape{160, 32}, Shape{576, 64}, Shape{576, 192},
                              Shape{640, 128}, Shape{2048, 128}, Shape{1024, 32}, Shape{384, 384}})
        for (auto [rows, n] : {std::pair<size_t, size_t>{16, 1}, {48, 1}, {80, 2}, {160, 1}, {32, 3}}) {
          PackedDesc d;
          d.bits = bits;
          d.has_zeros = zeros;
          d.act = ActivationMode::DynamicInt8;
          d.rows = rows;
          d.cols = sh.cols;
          d.group_size = sh.group;
          const PackedStorage s = random_packed(d, seed);
          const std::vector<uint8_t> tiles = lut_tiles_of(s.view());
          const std::vector<float> x = random_floats(n * d.cols, seed + 1);
          ++seed;
          std::vector<float> want(d.rows * n);
          kernels::ref::matmul_q(s.view(), x.data(), n, want.data());
          const double floor = typical_output(s.view(), x.data(), n);
          for (ThreadPool* pool : {&pool1, &pool2}) {
            std::vector<float> got(d.rows * n, std::numeric_limits<float>::quiet_NaN());
            kernels::matmul_q_lut(*pool, d, tiles.data(), x.data(), n, got.data());
            const double err = scaled_error(got, want, floor);
            worst = std::max(worst, err);
            ++checks;
            ASSERT_LE(err, 1e-5) << bits << " bits, zeros " << zeros << ", " << rows << " × " << sh.cols
                                 << " group " << sh.group << ", tokens " << n << ", threads " << pool->size();
          }
        }
  std::printf("LUT kernel: %d checks, worst scaled error %.2e\n", checks, worst);
}

// The table ranges at their ends: every code at its maximum (all planes set) and at 0, activations at ±amax
// (xq = ±127: xh = −8 / 7, xl = 1 / 15) in equal signs and alternating, where a byte overflow would show.
TEST(TmacLut, ExtremeCodesAndActivations) {
  if (!kernels::lut_kernel_available()) GTEST_SKIP() << "no AVX-512 BW/VBMI/VNNI on this CPU";
  ThreadPool pool(1);
  for (int bits : {1, 2, 3})
    for (int code : {0, (1 << bits) - 1})
      for (int pattern = 0; pattern < 4; ++pattern) {
        PackedDesc d;
        d.bits = bits;
        d.has_zeros = false;
        d.act = ActivationMode::DynamicInt8;
        d.rows = 32;
        d.cols = 256;
        d.group_size = 128;
        const PackedStorage s = random_packed(d, 55, code);
        const std::vector<uint8_t> tiles = lut_tiles_of(s.view());
        std::vector<float> x(d.cols);
        for (size_t k = 0; k < d.cols; ++k) {
          switch (pattern) {
            case 0: x[k] = 1.0f; break;
            case 1: x[k] = -1.0f; break;
            case 2: x[k] = (k % 2) ? 1.0f : -1.0f; break;
            default: x[k] = (k % 8 < 4) ? -1.0f : 0.999f; break;
          }
        }
        std::vector<float> want(d.rows), got(d.rows);
        kernels::ref::matmul_q(s.view(), x.data(), 1, want.data());
        kernels::matmul_q_lut(pool, d, tiles.data(), x.data(), 1, got.data());
        const double err = scaled_error(got, want, typical_output(s.view(), x.data(), 1));
        ASSERT_LE(err, 1e-5) << bits << " bits, code " << code << ", pattern " << pattern;
      }
}

TEST(TmacLut, RejectsFormatsWithoutTiles) {
  ThreadPool pool(1);
  PackedDesc d;
  d.bits = 4;
  d.act = ActivationMode::DynamicInt8;
  d.rows = 16;
  d.cols = 32;
  d.group_size = 32;
  std::vector<uint8_t> junk(1024);
  std::vector<float> x(32), y(16);
  EXPECT_THROW(kernels::matmul_q_lut(pool, d, junk.data(), x.data(), 1, y.data()), Error);
}

}  // namespace
}  // namespace lowbit
