// Runtime tests on tiny random Llama models: prefill of N tokens equals decoding them one by one, the runtime
// layouts (f32/f16/bf16) agree, batching does not change results, and bad requests are errors.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/gguf_writer.h"
#include "lowbit/session.h"
#include "test_util.h"

namespace lowbit {
namespace {

// max |a - b| / max |b|
double max_rel_error(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return den > 0 ? num / den : num;
}

std::vector<int32_t> random_tokens(size_t n, size_t vocab, uint64_t seed) {
  test::Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng.next() % vocab);
  return t;
}

struct Case {
  const char* name;
  test::TinyLlamaConfig cfg;
  const char* recipe = nullptr;  // none: run the file natively
  // fp32 paths agree to rounding. With int8 dynamic activations (native Q4/Q8), the few-ulp differences
  // between the matrix-matrix and matrix-vector summation orders can flip an activation's int8 rounding.
  double tol = 1e-4;
};

class PrefillVsDecode : public ::testing::TestWithParam<int> {};

std::vector<Case> cases() {
  std::vector<Case> v;
  test::TinyLlamaConfig c;
  v.push_back({"f32_tied", c});
  c.tied_output = false;
  v.push_back({"f32_untied", c});
  c = {};
  c.weight_type = GgmlType::Q4_1;
  c.embd_type = GgmlType::Q8_0;
  v.push_back({"q4_1_like_smollm2_as_f32", c, R"({"precision": {"dtype": "fp32"}})"});
  v.push_back({"q4_1_like_smollm2_native_a8", c, nullptr, 2e-2});
  v.push_back({"q4_1_requantized_int4", c, R"({"linear:int4": {"groupsize": 32}})"});
  v.push_back({"q4_1_requantized_a8wxdq3", c, R"({"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32}})", 2e-2});
  c = {};
  c.weight_type = GgmlType::Q4_0;
  c.n_heads = 6;
  c.n_kv_heads = 3;
  c.dim = 96;
  c.n_layers = 3;
  v.push_back({"q4_0_odd_heads_as_f32", c, R"({"precision": {"dtype": "fp32"}})"});
  v.push_back({"q4_0_odd_heads_native_a8", c, nullptr, 2e-2});
  c = {};
  c.weight_type = GgmlType::F16;
  c.n_kv_heads = 4;  // plain multi-head attention
  v.push_back({"f16_mha", c});
  return v;
}

TEST_P(PrefillVsDecode, LogitsMatch) {
  const Case tc = cases()[GetParam()];
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", tc.cfg);
  LoadOptions lo;
  if (tc.recipe) lo.recipe = Recipe::parse(tc.recipe);
  auto model = Model::load(info.path, lo);
  const size_t V = model->config().vocab_size;
  for (int threads : {1, 2}) {
    SessionOptions so;
    so.n_ctx = 64;
    so.threads = threads;
    Session a(model, so), b(model, so);
    auto toks = random_tokens(37, V, 7);
    const float* pre = a.prefill(toks, true);
    std::vector<float> prefill_logits(pre, pre + toks.size() * V);
    for (size_t i = 0; i < toks.size(); ++i) {
      const float* dec = b.decode(toks[i]);
      EXPECT_LE(max_rel_error(dec, prefill_logits.data() + i * V, V), tc.tol)
          << tc.name << " position " << i << " threads " << threads;
    }
    EXPECT_EQ(a.n_past(), toks.size());
    EXPECT_EQ(b.n_past(), toks.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PrefillVsDecode, ::testing::Range(0, static_cast<int>(cases().size())),
                         [](const auto& info) { return std::string(cases()[info.param].name); });

TEST(Session, SmallBatchesEqualOnePrefill) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  const size_t V = model->config().vocab_size;
  auto toks = random_tokens(50, V, 3);
  SessionOptions big, small;
  big.n_ctx = small.n_ctx = 64;
  small.max_batch = 7;
  Session a(model, big), b(model, small);
  const float* pa = a.prefill(toks, true);
  std::vector<float> la(pa, pa + toks.size() * V);
  const float* pb = b.prefill(toks, true);
  EXPECT_LE(max_rel_error(pb, la.data(), toks.size() * V), 1e-5);
}

TEST(Session, ContinuedPrefillEqualsWholePrefill) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  const size_t V = model->config().vocab_size;
  auto toks = random_tokens(20, V, 5);
  Session a(model, {}), b(model, {});
  const float* w = a.prefill(toks, false);
  std::vector<float> whole(w, w + V);
  b.prefill(std::vector<int32_t>(toks.begin(), toks.begin() + 11));
  const float* c = b.prefill(std::vector<int32_t>(toks.begin() + 11, toks.end()));
  EXPECT_LE(max_rel_error(c, whole.data(), V), 1e-5);
}

TEST(Session, SixteenBitLayoutsStayClose) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto f32 = Model::load(info.path);
  const size_t V = f32->config().vocab_size;
  auto toks = random_tokens(12, V, 9);
  Session s32(f32, {});
  const float* p = s32.prefill(toks);
  std::vector<float> ref(p, p + V);
  for (WeightDtype dt : {WeightDtype::F16, WeightDtype::BF16}) {
    LoadOptions lo;
    lo.recipe = Recipe::parse(std::string(R"({"precision": {"dtype": ")") + weight_dtype_name(dt) + "\"}}");
    auto m = Model::load(info.path, lo);
    Session s(m, {});
    const float* q = s.prefill(toks);
    double tol = dt == WeightDtype::F16 ? 5e-3 : 5e-2;
    EXPECT_LE(max_rel_error(q, ref.data(), V), tol) << weight_dtype_name(dt);
  }
}

// A KV cache of `type` against the fp32 cache (40 tokens, 2 threads): every position's prefill logits within tol
// of the fp32 cache's, and decode within 1e-4 of prefill with the same cache (both read the same rounded keys
// and values). Returns the worst error against the fp32 cache.
double check_kv_cache(std::shared_ptr<const Model> model, KvType type, uint64_t seed, double tol) {
  const size_t V = model->config().vocab_size;
  auto toks = random_tokens(40, V, seed);
  SessionOptions o32, o;
  o32.n_ctx = o.n_ctx = 64;
  o.kv_type = type;
  o.threads = 2;
  Session s32(model, o32), s(model, o), d(model, o);
  const float* p = s32.prefill(toks, true);
  std::vector<float> ref(p, p + toks.size() * V);
  const float* q = s.prefill(toks, true);
  std::vector<float> got(q, q + toks.size() * V);
  double worst = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    const double e = max_rel_error(got.data() + i * V, ref.data() + i * V, V);
    worst = std::max(worst, e);
    EXPECT_LE(e, tol) << "position " << i;
    const float* dec = d.decode(toks[i]);
    EXPECT_LE(max_rel_error(dec, got.data() + i * V, V), 1e-4) << "decode vs prefill, position " << i;
  }
  return worst;
}

uint64_t kv_cache_bytes(std::shared_ptr<const Model> model, KvType type) {
  SessionOptions o;
  o.n_ctx = 64;
  o.kv_type = type;
  return Session(model, o).kv_cache_bytes();
}

// An f16 KV cache: close to the fp32 cache (keys and values rounded once), and half the bytes.
TEST(Session, F16KvCache) {
  test::TempDir dir;
  auto model = Model::load(test::write_tiny_llama(dir.path() + "/m.gguf").path);
  EXPECT_EQ(kv_cache_bytes(model, KvType::F16) * 2, kv_cache_bytes(model, KvType::F32));
  check_kv_cache(model, KvType::F16, 11, 5e-3);
  EXPECT_EQ(parse_kv_type("f16"), KvType::F16);
  EXPECT_EQ(parse_kv_type("f32"), KvType::F32);
  EXPECT_EQ(parse_kv_type("int8"), KvType::Int8);
  EXPECT_THROW(parse_kv_type("q4"), Error);
  EXPECT_THROW(parse_kv_type("F16"), Error);
}

// An int8 KV cache (per-vector scales): close to the fp32 cache, and a quarter of the bytes plus one float per
// stored head vector.
TEST(Session, Int8KvCache) {
  test::TempDir dir;
  auto model = Model::load(test::write_tiny_llama(dir.path() + "/m.gguf").path);
  const ModelConfig& c = model->config();
  const uint64_t vectors = 2 * c.n_layers * c.n_kv_heads * 64;
  EXPECT_EQ(kv_cache_bytes(model, KvType::Int8), kv_cache_bytes(model, KvType::F32) / 4 + vectors * sizeof(float));
  const double worst = check_kv_cache(model, KvType::Int8, 12, 3e-2);
  std::printf("int8 KV cache: worst relative logit error vs fp32 cache %.2e\n", worst);
}

TEST(Session, PromptLongerThanContextIsAnError) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  SessionOptions so;
  so.n_ctx = 8;
  Session s(model, so);
  auto msg = test::error_message([&] { s.prefill(random_tokens(9, model->config().vocab_size, 1)); });
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("context"), std::string::npos) << *msg;
  s.prefill(random_tokens(8, model->config().vocab_size, 1));  // exactly full is fine
  EXPECT_TRUE(test::error_message([&] { s.decode(0); }).has_value());
}

TEST(Session, TokenOutsideVocabularyIsAnError) {
  test::TempDir dir;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf");
  auto model = Model::load(info.path);
  Session s(model, {});
  EXPECT_TRUE(test::error_message([&] { s.decode(static_cast<int32_t>(model->config().vocab_size)); }).has_value());
  EXPECT_TRUE(test::error_message([&] { s.decode(-1); }).has_value());
}

TEST(Session, WrongTensorShapeNamesTheTensor) {
  test::TempDir dir;
  test::TinyLlamaConfig c;
  auto info = test::write_tiny_llama(dir.path() + "/m.gguf", c);
  // Rewrite with a mismatched head count so attn_k's shape disagrees with the metadata.
  GgufFile g(info.path);
  GgufWriter w(dir.path() + "/bad.gguf");
  w.copy_metadata(g, [](const std::string& k) { return k != "llama.attention.head_count_kv"; });
  w.add_uint32("llama.attention.head_count_kv", 4);
  for (const auto& t : g.tensors()) w.add_tensor(t.name, t.type, t.ne, std::span<const uint8_t>(t.data, t.n_bytes));
  w.write();
  auto msg = test::error_message([&] { Model::load(dir.path() + "/bad.gguf"); });
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("attn_k.weight"), std::string::npos) << *msg;
  EXPECT_NE(msg->find("bad.gguf"), std::string::npos) << *msg;
}

}  // namespace
}  // namespace lowbit
