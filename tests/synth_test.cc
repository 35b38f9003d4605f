// lowbit synth: the GGUF it writes loads (in lowbit; llama.cpp is checked by bench scripts), holds the values
// synth_row defines, pads vocabularies, and rejects bad presets/types/vocabularies with a clear error.
#include "synth/synth.h"

#include <gtest/gtest.h>

#include "io/dequantize.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "lowbit/session.h"
#include "test_util.h"

namespace lowbit {
namespace {

TEST(Synth, TinyPresetLoadsAndHoldsTheDefinedValues) {
  test::TempDir dir;
  ThreadPool pool(2);
  SynthOptions o;
  o.preset = find_synth_preset("tiny");
  o.type = GgmlType::F32;
  o.seed = 7;
  const std::string path = dir.path() + "/t.gguf";
  const uint64_t bytes = write_synthetic_llama(path, o, pool);
  GgufFile g(path);
  EXPECT_EQ(bytes, g.file_size());
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), o.preset.vocab_size);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  const GgufTensor* t = g.find_tensor("blk.1.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->ne[0], o.preset.ffn_dim);
  std::vector<float> got(t->ne[0]), want(t->ne[0]);
  for (uint64_t row : {uint64_t{0}, uint64_t{17}, t->ne[1] - 1}) {
    dequantize_rows(*t, row, 1, got.data());
    synth_row(7, t->name, row, want.data(), want.size());
    EXPECT_EQ(got, want) << "row " << row;
  }
  // Linear rows have variance 1/in: uniform in ±sqrt(3/in).
  const float a = std::sqrt(3.0f / static_cast<float>(o.preset.ffn_dim));
  for (float v : got) EXPECT_LE(std::fabs(v), a);

  auto m = Model::load(path);
  EXPECT_EQ(m->config().n_layers, o.preset.n_layers);
  EXPECT_EQ(m->config().n_kv_heads, o.preset.n_kv_heads);
  EXPECT_FALSE(m->config().tied_output);
  Session s(m, {});
  const float* logits = s.prefill({1, 5, 9}, false);
  for (size_t i = 0; i < m->config().vocab_size; ++i) ASSERT_TRUE(std::isfinite(logits[i]));
}

TEST(Synth, SameSeedSameFileOtherSeedOtherWeights) {
  test::TempDir dir;
  ThreadPool pool(2);
  SynthOptions o;
  o.preset = find_synth_preset("tiny");
  o.type = GgmlType::Q4_0;
  write_synthetic_llama(dir.path() + "/a.gguf", o, pool);
  ThreadPool one(1);
  write_synthetic_llama(dir.path() + "/b.gguf", o, one);  // thread count does not change the bytes
  o.seed = 2;
  write_synthetic_llama(dir.path() + "/c.gguf", o, pool);
  const auto a = test::read_file_bytes(dir.path() + "/a.gguf"), b = test::read_file_bytes(dir.path() + "/b.gguf"),
             c = test::read_file_bytes(dir.path() + "/c.gguf");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
}

TEST(Synth, VocabularyIsCopiedAndPaddedWithUnusedTokens) {
  test::TempDir dir;
  ThreadPool pool(1);
  SynthOptions o;
  o.preset = find_synth_preset("tiny");
  o.preset.vocab_size = 40000;  // more than the vocab file's 32000
  o.preset.n_layers = 1;
  o.vocab_gguf = test::shared_dir() + "/tokenizers/ggml-vocab-llama-spm.gguf";
  write_synthetic_llama(dir.path() + "/v.gguf", o, pool);
  GgufFile g(dir.path() + "/v.gguf");
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 40000u);
  EXPECT_EQ(tokens[32000], "[PAD32000]");
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type")[39999], 5);
  EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores").size(), 40000u);
  auto m = Model::load(dir.path() + "/v.gguf");
  // The first of llama.cpp's vectors for this vocabulary (ggml-vocab-llama-spm.gguf.inp/.out).
  EXPECT_EQ(m->tokenizer().encode("ied 4 ½ months", false, false),
            (std::vector<int32_t>{474, 287, 29871, 29946, 29871, 30226, 7378}));
}

TEST(Synth, BadInputsAreClearErrors) {
  test::TempDir dir;
  ThreadPool pool(1);
  auto msg = test::error_message([] { find_synth_preset("llama-9b"); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("tinyllama-1.1b"), std::string::npos) << *msg;

  SynthOptions o;
  o.preset = find_synth_preset("tiny");  // vocab 320 < the file's 32000 tokens
  o.vocab_gguf = test::shared_dir() + "/tokenizers/ggml-vocab-llama-spm.gguf";
  msg = test::error_message([&] { write_synthetic_llama(dir.path() + "/x.gguf", o, pool); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("more than the preset"), std::string::npos) << *msg;

  o.vocab_gguf.clear();
  o.type = GgmlType::Q4_1;
  msg = test::error_message([&] { write_synthetic_llama(dir.path() + "/x.gguf", o, pool); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("q4_0"), std::string::npos) << *msg;
}

}  // namespace
}  // namespace lowbit
