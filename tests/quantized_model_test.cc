// Quantized models end to end on tiny random Llamas: recipes applied at load, the .lbt bundle round trip
// (bit-identical logits to the in-memory quantization), native GGUF quant types, and recipe errors that only
// show when a recipe meets a tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/matmul_q/matmul_q.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "lowbit/session.h"
#include "test_util.h"

namespace lowbit {
namespace {

std::vector<float> logits_of(const std::shared_ptr<Model>& m, const std::vector<int32_t>& toks) {
  Session s(m, {});
  const float* l = s.prefill(toks, true);
  return std::vector<float>(l, l + toks.size() * m->config().vocab_size);
}

std::vector<int32_t> some_tokens(size_t vocab) {
  test::Rng rng(17);
  std::vector<int32_t> t(23);
  for (auto& x : t) x = static_cast<int32_t>(rng.next() % vocab);
  return t;
}

double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / den;
}

class BundleRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(BundleRoundTrip, LogitsAreBitIdentical) {
  test::TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.weight_type = GgmlType::Q4_1;
  cfg.embd_type = GgmlType::Q8_0;
  cfg.dim = 96;
  cfg.n_heads = 3;
  cfg.n_kv_heads = 1;
  cfg.ffn = 192;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
  LoadOptions lo;
  if (std::strlen(GetParam()) > 0) lo.recipe = Recipe::parse(GetParam());
  auto in_memory = Model::load(info.path, lo);
  in_memory->save_bundle(dir.path() + "/m.lbt");
  auto from_bundle = Model::load(dir.path() + "/m.lbt");
  EXPECT_EQ(from_bundle->weight_bytes(), in_memory->weight_bytes());
  EXPECT_EQ(from_bundle->recipe_json(), in_memory->recipe_json());
  EXPECT_EQ(from_bundle->tokenizer().encode("hello world", false, false),
            in_memory->tokenizer().encode("hello world", false, false));
  auto toks = some_tokens(in_memory->config().vocab_size);
  std::vector<float> a = logits_of(in_memory, toks), b = logits_of(from_bundle, toks);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    Recipes, BundleRoundTrip,
    ::testing::Values("",  // native Q4_1 / Q8_0
                      R"({"precision": {"dtype": "fp32"}})", R"({"precision": {"dtype": "bf16"}})",
                      R"({"linear:int8": {"groupsize": 0}})", R"({"linear:int4": {"groupsize": 32}})",
                      R"({"linear:int4": {"groupsize": 48}})",
                      R"({"linear:a8w4dq": {"groupsize": 32}, "embedding": {"bitwidth": 4, "groupsize": 32}})",
                      R"({"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32, "has_weight_zeros": true}})",
                      R"({"linear:a8wxdq": {"bitwidth": 2, "groupsize": 96}, "embedding:wx": {"bitwidth": 5, "groupsize": 32}, "output": "none"})",
                      R"({"linear:int4": {"groupsize": 32}, "embedding": {"bitwidth": 8, "groupsize": 0}, "output": {"scheme": "int8", "groupsize": 32}})"));

// `tiled` (loaded with row tiles) gives the logits of `rows` (the same file in the row layout) within
// `tolerance`, refuses to be saved, and gives bit-identical logits to `rows` saved as a bundle and loaded back
// with row tiles (whose row-layout pages are released).
void expect_tiles_keep_logits(const std::shared_ptr<Model>& rows, const std::shared_ptr<Model>& tiled,
                              double tolerance, const std::string& dir) {
  auto toks = some_tokens(rows->config().vocab_size);
  EXPECT_LE(max_rel_error(logits_of(tiled, toks), logits_of(rows, toks)), tolerance);
  EXPECT_THROW(tiled->save_bundle(dir + "/t.lbt"), Error);
  rows->save_bundle(dir + "/m.lbt");
  LoadOptions bt;
  bt.row_tiles = true;
  auto c = Model::load(dir + "/m.lbt", bt);
  EXPECT_EQ(c->weight_bytes(), tiled->weight_bytes());
  const std::vector<float> lb = logits_of(tiled, toks), lc = logits_of(c, toks);
  ASSERT_EQ(lb.size(), lc.size());
  EXPECT_EQ(std::memcmp(lb.data(), lc.data(), 4 * lb.size()), 0);
}

// Weights rearranged into row tiles for this CPU's kernels (LoadOptions::row_tiles) give the row layout's
// logits up to float summation order, from a GGUF and from a bundle (whose row-layout pages are released).
TEST(QuantizedModel, RowTilesKeepLogits) {
  if (!kernels::matmul_q_uses_row_tiles()) GTEST_SKIP() << "this CPU's kernels use no row tiles";
  test::TempDir dir;
  for (bool tied : {true, false}) {
    test::TinyLlamaConfig cfg;
    cfg.weight_type = GgmlType::Q4_0;
    cfg.embd_type = GgmlType::Q8_0;
    cfg.output_type = GgmlType::Q4_1;
    cfg.tied_output = tied;
    cfg.dim = 96;
    cfg.n_heads = 3;
    cfg.n_kv_heads = 1;
    cfg.ffn = 192;
    auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
    for (const char* recipe : {"", R"({"linear:a8wxdq": {"bitwidth": 8, "groupsize": 32, "has_weight_zeros": true}})",
                               R"({"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32, "has_weight_zeros": true}})",
                               R"({"linear:a8wxdq": {"bitwidth": 2, "groupsize": 96}})"}) {
      SCOPED_TRACE(std::string(tied ? "tied " : "untied ") + recipe);
      LoadOptions rows, tiles;
      if (*recipe) rows.recipe = tiles.recipe = Recipe::parse(recipe);
      tiles.row_tiles = true;
      auto a = Model::load(info.path, rows), b = Model::load(info.path, tiles);
      ASSERT_TRUE(b->layer(0).w_gate_up.packed.tiles != nullptr);
      EXPECT_EQ(b->layer(0).w_gate_up.packed.codes, nullptr);  // the row layout is gone
      EXPECT_EQ(a->weight_bytes(), b->weight_bytes());
      expect_tiles_keep_logits(a, b, 1e-4, dir.path());
    }
  }
}

// Dense weights in 32-row groups (the same LoadOptions::row_tiles): the row layout's logits up to float
// summation order (bf16: and bf16 activations in prefill), tied embeddings looked up from the groups, from a
// GGUF and from a bundle.
TEST(QuantizedModel, DenseTilesKeepLogits) {
  if (!kernels::matmul_uses_dense_tiles()) GTEST_SKIP() << "this CPU's kernels keep dense weights in rows";
  test::TempDir dir;
  for (bool tied : {true, false}) {
    test::TinyLlamaConfig cfg;
    cfg.tied_output = tied;
    cfg.dim = 96;
    cfg.n_heads = 3;
    cfg.n_kv_heads = 1;
    cfg.ffn = 200;  // gate|up: 400 rows = 12 groups + a 16-row tail
    auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
    for (const char* recipe : {"", R"({"precision": {"dtype": "fp16"}})", R"({"precision": {"dtype": "bf16"}})"}) {
      SCOPED_TRACE(std::string(tied ? "tied " : "untied ") + recipe);
      LoadOptions rows, tiles;
      if (*recipe) rows.recipe = tiles.recipe = Recipe::parse(recipe);
      tiles.row_tiles = true;
      auto a = Model::load(info.path, rows), b = Model::load(info.path, tiles);
      ASSERT_FALSE(a->layer(0).w_gate_up.dense_tiled);
      ASSERT_TRUE(b->layer(0).w_gate_up.dense_tiled);
      ASSERT_TRUE(b->token_embedding().dense_tiled);
      EXPECT_EQ(a->weight_bytes(), b->weight_bytes());
      std::vector<float> ra(cfg.dim), rb(cfg.dim);
      for (size_t r : {size_t{0}, size_t{33}, a->token_embedding().rows - 1}) {
        a->token_embedding().row_to_f32(r, ra.data());
        b->token_embedding().row_to_f32(r, rb.data());
        EXPECT_EQ(ra, rb) << "embedding row " << r;
      }
      // 16-bit groups prefill in bf16 × bf16 where the CPU can (kernels::matmul_bf16_dot) and rows do not: one
      // more rounding to 8 significant bits per matmul input (and per f16 weight).
      const kernels::WeightType wt = std::strstr(recipe, "fp16") ? kernels::WeightType::F16 : kernels::WeightType::BF16;
      const bool bf16_acts = std::strstr(recipe, "16") &&
                             kernels::matmul_bf16_dot_available(kernels::DenseLayout::Tiles, wt) !=
                                 kernels::matmul_bf16_dot_available(kernels::DenseLayout::Rows, wt);
      expect_tiles_keep_logits(a, b, bf16_acts ? 2e-2 : 1e-5, dir.path());
    }
  }
}

TEST(QuantizedModel, MoreBitsMeanCloserToFp32) {
  test::TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.dim = 128;
  cfg.ffn = 256;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
  auto toks = some_tokens(Model::load(info.path)->config().vocab_size);
  std::vector<float> ref = logits_of(Model::load(info.path), toks);
  double prev = 0;
  for (int bits : {8, 6, 4, 2}) {
    LoadOptions lo;
    lo.recipe = Recipe::parse(fmt::format(R"({{"linear:a8wxdq": {{"bitwidth": {}, "groupsize": 32, "has_weight_zeros": true}}}})", bits));
    double err = max_rel_error(logits_of(Model::load(info.path, lo), toks), ref);
    EXPECT_GT(err, prev) << bits << " bits";
    // Relative to the largest logit of a tiny random model, which is small: the quality check that matters is
    // perplexity on the real model (README tables).
    if (bits == 8) {
      EXPECT_LT(err, 5e-2);
    }
    prev = err;
  }
}

TEST(QuantizedModel, QuantizedWeightsAreSmaller) {
  test::TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.dim = 128;
  cfg.ffn = 256;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
  LoadOptions f32, q4;
  f32.recipe = Recipe::parse(R"({"precision": {"dtype": "fp32"}})");
  q4.recipe = Recipe::parse(R"({"linear:a8w4dq": {"groupsize": 32}, "embedding": {"bitwidth": 4, "groupsize": 32}})");
  auto a = Model::load(info.path, f32), b = Model::load(info.path, q4);
  // 4 bits + a 16-bit scale per 32 weights = 4.5 bits against 32; norms stay fp32.
  EXPECT_NEAR(static_cast<double>(b->weight_bytes()) / a->weight_bytes(), 4.5 / 32, 0.01);
}

TEST(QuantizedModel, GroupsizeThatDoesNotDivideARowFallsBackToADivisorAndSaysSo) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");  // dim 64, ffn 128
  LoadOptions g48, g32;
  g48.recipe = Recipe::parse(R"({"linear:int4": {"groupsize": 48}})");
  g32.recipe = Recipe::parse(R"({"linear:int4": {"groupsize": 32}})");
  ::testing::internal::CaptureStderr();
  auto a = Model::load(info.path, g48);
  const std::string err = ::testing::internal::GetCapturedStderr();
  // 48 divides neither 64 nor 128: both row lengths fall back to 32, the largest multiple of 32 below 48 that
  // divides them, each noted once and naming the first tensor it applied to.
  EXPECT_NE(err.find("groupsize 48 does not divide the row length 64"), std::string::npos) << err;
  EXPECT_NE(err.find("groupsize 48 does not divide the row length 128"), std::string::npos) << err;
  EXPECT_NE(err.find("use groupsize 32"), std::string::npos) << err;
  EXPECT_NE(err.find(".weight"), std::string::npos) << err;
  auto b = Model::load(info.path, g32);
  const auto toks = some_tokens(a->config().vocab_size);
  EXPECT_EQ(logits_of(a, toks), logits_of(b, toks));
}

TEST(QuantizedModel, RecipeOnABundleIsAnError) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  LoadOptions lo;
  lo.recipe = Recipe::parse(R"({"linear:int4": {"groupsize": 32}})");
  Model::load(info.path, lo)->save_bundle(dir.path() + "/m.lbt");
  auto msg = test::error_message([&] { Model::load(dir.path() + "/m.lbt", lo); });
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("m.lbt"), std::string::npos) << *msg;
}

TEST(QuantizedModel, DamagedBundlesAreErrors) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  LoadOptions lo;
  lo.recipe = Recipe::parse(R"({"linear:int4": {"groupsize": 32}})");
  Model::load(info.path, lo)->save_bundle(dir.path() + "/m.lbt");
  std::vector<uint8_t> bytes = test::read_file_bytes(dir.path() + "/m.lbt");
  const std::string bad = dir.path() + "/bad.lbt";
  // Truncations and a flipped byte in the middle of the weights.
  for (size_t cut : {size_t(9), size_t(40), bytes.size() / 3, bytes.size() - 1}) {
    test::write_file_bytes(bad, std::span<const uint8_t>(bytes.data(), cut));
    auto msg = test::error_message([&] { Model::load(bad); });
    ASSERT_TRUE(msg.has_value()) << "cut at " << cut;
    EXPECT_NE(msg->find("bad.lbt"), std::string::npos) << *msg;
  }
  std::vector<uint8_t> flipped = bytes;
  flipped[bytes.size() * 2 / 3] ^= 0x40;
  test::write_file_bytes(bad, flipped);
  auto msg = test::error_message([&] { Model::load(bad); });
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("checksum"), std::string::npos) << *msg;
}

}  // namespace
}  // namespace lowbit
