// lowbit convert --to gguf: metadata kept, tensors re-encoded exactly as ggml's reference quantizers do, a
// bundle's stacked matrices split back into llama.cpp's tensors, and clear errors.
#include "convert/convert_gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "io/dequantize.h"
#include "io/ggml_quants.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "test_util.h"

namespace lowbit {
namespace {

TEST(Convert, GgufToQ8_0MatchesTheReferenceQuantizerAndKeepsMetadata) {
  test::TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.pre = "smollm";
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
  ThreadPool pool(2);
  const std::string out = dir.path() + "/m.q8.gguf";
  const uint64_t bytes = convert_to_gguf(info.path, out, GgmlType::Q8_0, pool);
  GgufFile src(info.path), dst(out);
  EXPECT_EQ(bytes, dst.file_size());
  EXPECT_EQ(dst.get_uint("general.file_type"), 7u);
  EXPECT_EQ(dst.get_string("tokenizer.chat_template"), src.get_string("tokenizer.chat_template"));
  EXPECT_EQ(dst.get_string_array("tokenizer.ggml.tokens"), src.get_string_array("tokenizer.ggml.tokens"));
  ASSERT_EQ(dst.tensors().size(), src.tensors().size());
  for (const GgufTensor& t : src.tensors()) {
    const GgufTensor* d = dst.find_tensor(t.name);
    ASSERT_NE(d, nullptr) << t.name;
    EXPECT_EQ(d->ne, t.ne) << t.name;
    EXPECT_EQ(d->type, t.ne.size() == 1 ? GgmlType::F32 : GgmlType::Q8_0) << t.name;
    const auto want_floats = test::tiny_llama_values(cfg, t.name);
    const auto want = quantize_ggml(d->type, want_floats.data(), static_cast<int64_t>(want_floats.size()));
    ASSERT_EQ(d->n_bytes, want.size()) << t.name;
    EXPECT_EQ(std::memcmp(d->data, want.data(), want.size()), 0) << t.name;
  }
  // The converted file runs and its tokenizer is the source's.
  auto m = Model::load(out);
  EXPECT_EQ(m->tokenizer().encode("the cat", true, true), Model::load(info.path)->tokenizer().encode("the cat", true, true));
}

TEST(Convert, BundleIsSplitBackIntoLlamaTensors) {
  test::TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.tied_output = false;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", cfg);
  LoadOptions lo;
  lo.recipe = Recipe::parse(R"({"linear:int4": {"groupsize": 32}, "embedding": {"bitwidth": 8, "groupsize": 32}})");
  auto q = Model::load(info.path, lo);
  q->save_bundle(dir.path() + "/m.lbt");
  ThreadPool pool(2);
  convert_to_gguf(dir.path() + "/m.lbt", dir.path() + "/back.gguf", GgmlType::F32, pool);
  GgufFile back(dir.path() + "/back.gguf"), src(info.path);
  ASSERT_EQ(back.tensors().size(), src.tensors().size());
  const ModelConfig& c = q->config();
  // Row r of attn_v is row dim + kv_dim + r of the stacked q|k|v; of ffn_up, row ffn + r of gate|up.
  std::vector<float> got(c.dim), want(c.dim);
  for (size_t r : {size_t{0}, c.kv_dim() - 1}) {
    dequantize_rows(*back.find_tensor("blk.1.attn_v.weight"), r, 1, got.data());
    q->layer(1).wqkv.row_to_f32(c.dim + c.kv_dim() + r, want.data());
    EXPECT_EQ(got, want) << r;
    dequantize_rows(*back.find_tensor("blk.0.ffn_up.weight"), r, 1, got.data());
    q->layer(0).w_gate_up.row_to_f32(c.ffn_dim + r, want.data());
    EXPECT_EQ(got, want) << r;
  }
  dequantize_rows(*back.find_tensor("output.weight"), 3, 1, got.data());
  q->output().row_to_f32(3, want.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(back.get_uint("llama.block_count"), src.get_uint("llama.block_count"));
}

TEST(Convert, BadInputsAreClearErrors) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  ThreadPool pool(1);
  auto msg = test::error_message([&] { convert_to_gguf(info.path, dir.path() + "/o.gguf", GgmlType::Q4_1, pool); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("q4_0"), std::string::npos) << *msg;
  msg = test::error_message([&] { convert_to_gguf(dir.path() + "/none.gguf", dir.path() + "/o.gguf", GgmlType::F16, pool); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("none.gguf"), std::string::npos) << *msg;
  const std::vector<uint8_t> junk(100, 'x');
  test::write_file_bytes(dir.path() + "/junk.lbt", junk);
  msg = test::error_message([&] { convert_to_gguf(dir.path() + "/junk.lbt", dir.path() + "/o.gguf", GgmlType::F16, pool); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("junk.lbt"), std::string::npos) << *msg;
}

}  // namespace
}  // namespace lowbit
