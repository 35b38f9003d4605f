// Loads a Llama model into the runtime layout, from a GGUF file (dequantizing, re-quantizing with a recipe, or
// mapping GGUF's Q4_0/Q4_1/Q8_0 blocks natively) or from a .lbt bundle (weights used in place).
// Q/K/V are stacked into one matrix and gate/up into another, so each is one matmul call per layer.
#include "lowbit/model.h"

#include <fmt/ranges.h>

#include <cstring>

#include "io/dequantize.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/thread_pool.h"
#include "model/model_loader.h"
#include "model/weight_builder.h"

namespace lowbit {

namespace {

const GgufTensor& expect(const GgufFile& g, const std::string& name, std::vector<uint64_t> ne) {
  const GgufTensor& t = g.tensor(name);
  if (t.ne != ne)
    fail("{}: tensor '{}' has shape [{}], expected [{}]", g.path(), name, fmt::join(t.ne, ", "),
         fmt::join(ne, ", "));
  return t;
}

void load_vector(const GgufFile& g, const std::string& name, size_t n, AlignedBuffer<float>& out) {
  const GgufTensor& t = expect(g, name, {n});
  out.resize(n);
  dequantize_rows(t, 0, 1, out.data());
}

}  // namespace

uint64_t Model::weight_bytes() const {
  uint64_t b = token_embd_.bytes() + (output_shares_embedding_ ? 0 : output_.bytes()) + output_norm_.size() * 4;
  for (const auto& l : layers_)
    b += l.wqkv.bytes() + l.wo.bytes() + l.w_gate_up.bytes() + l.w_down.bytes() +
         (l.attn_norm.size() + l.ffn_norm.size()) * 4;
  return b;
}

std::shared_ptr<Model> ModelLoader::from_gguf(const std::string& path, const LoadOptions& options) {
  GgufFile g(path);
  auto m = std::make_shared<Model>();
  m->path_ = path;
  m->file_bytes_ = g.file_size();
  m->config_ = ModelConfig::from_gguf(g);
  m->tokenizer_ = Tokenizer::from_gguf(g);
  m->metadata_ = g.metadata();
  const ModelConfig& c = m->config_;
  if (m->tokenizer_->vocab_size() != c.vocab_size)
    fail("{}: the tokenizer has {} tokens but 'token_embd.weight' has {} rows", path, m->tokenizer_->vocab_size(),
         c.vocab_size);
  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
  const uint64_t D = c.dim, KV = c.kv_dim(), F = c.ffn_dim, V = c.vocab_size;
  // Each weight is rearranged for the kernels as soon as it is built (only one matrix is ever held in both
  // layouts).
  WeightBuilder build(pool, options.recipe, c.tied_output, options.row_tiles);
  if (options.recipe) m->recipe_json_ = options.recipe->json;

  const GgufTensor& embd = expect(g, "token_embd.weight", {D, V});
  m->token_embd_ = build.make({&embd}, WeightRole::Embedding);
  if (c.tied_output) {
    m->output_shares_embedding_ = !build.output_differs_from_embedding();
    if (!m->output_shares_embedding_) m->output_ = build.make({&embd}, WeightRole::Output);
  } else {
    m->output_ = build.make({&expect(g, "output.weight", {D, V})}, WeightRole::Output);
  }
  load_vector(g, "output_norm.weight", D, m->output_norm_);
  m->layers_.resize(c.n_layers);
  for (size_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights& L = m->layers_[i];
    load_vector(g, p + "attn_norm.weight", D, L.attn_norm);
    load_vector(g, p + "ffn_norm.weight", D, L.ffn_norm);
    L.wqkv = build.make({&expect(g, p + "attn_q.weight", {D, D}), &expect(g, p + "attn_k.weight", {D, KV}),
                         &expect(g, p + "attn_v.weight", {D, KV})},
                        WeightRole::Linear);
    L.wo = build.make({&expect(g, p + "attn_output.weight", {D, D})}, WeightRole::Linear);
    L.w_gate_up = build.make({&expect(g, p + "ffn_gate.weight", {D, F}), &expect(g, p + "ffn_up.weight", {D, F})},
                             WeightRole::Linear);
    L.w_down = build.make({&expect(g, p + "ffn_down.weight", {F, D})}, WeightRole::Linear);
  }
  m->n_params_ = V * D * (c.tied_output ? 1 : 2) + D +
                 c.n_layers * (D * (D + 2 * KV) + D * D + 2 * F * D + F * D + 2 * D);
  return m;
}

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  if (is_bundle_file(path)) {
    if (options.recipe)
      fail("{}: a .lbt bundle is already in its runtime format; --quantize and --dtype apply to GGUF models", path);
    std::shared_ptr<Model> m = ModelLoader::from_bundle(path);
    if (options.row_tiles) {  // (from_gguf tiles each weight as it builds it)
      ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
      m->token_embd_.use_row_tiles(pool);
      m->output_.use_row_tiles(pool);
      for (auto& l : m->layers_)
        for (Weight* w : {&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down}) w->use_row_tiles(pool);
    }
    return m;
  }
  return ModelLoader::from_gguf(path, options);
}

}  // namespace lowbit
