// Loads a Llama GGUF into the runtime layout: every linear weight dequantized to fp32 and stored as
// f32/f16/bf16 rows (out × in). Q/K/V are stacked into one matrix and gate/up into another, so each is
// one matmul call per layer. The tokenizer comes from the same file's metadata.
#include <fmt/ranges.h>

#include <cstring>

#include "io/dequantize.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model.h"
#include "lowbit/thread_pool.h"

namespace lowbit {

namespace {

size_t dtype_bytes(WeightDtype d) { return d == WeightDtype::F32 ? 4 : 2; }

const GgufTensor& expect(const GgufFile& g, const std::string& name, std::vector<uint64_t> ne) {
  const GgufTensor& t = g.tensor(name);
  if (t.ne != ne)
    fail("{}: tensor '{}' has shape [{}], expected [{}]", g.path(), name, fmt::join(t.ne, ", "),
         fmt::join(ne, ", "));
  return t;
}

// Converts rows of `parts` (stacked in order) into one weight of `dtype`.
void load_linear(ThreadPool& pool, const std::vector<const GgufTensor*>& parts, WeightDtype dtype, LinearWeight& w) {
  w.dtype = dtype;
  w.cols = parts[0]->ne[0];
  w.rows = 0;
  for (auto* p : parts) w.rows += p->n_elements / w.cols;
  w.data.resize(w.rows * w.cols * dtype_bytes(dtype));
  size_t row_base = 0;
  for (auto* p : parts) {
    size_t rows = p->n_elements / w.cols;
    pool.parallel_for(rows, 64, [&](size_t r0, size_t r1) {
      std::vector<float> buf((r1 - r0) * w.cols);
      dequantize_rows(*p, r0, r1 - r0, buf.data());
      uint8_t* dst = w.data.data() + (row_base + r0) * w.cols * dtype_bytes(dtype);
      switch (dtype) {
        case WeightDtype::F32: std::memcpy(dst, buf.data(), buf.size() * 4); break;
        case WeightDtype::F16: kernels::f32_to_f16(buf.data(), reinterpret_cast<uint16_t*>(dst), buf.size()); break;
        case WeightDtype::BF16:
          kernels::f32_to_bf16(buf.data(), reinterpret_cast<uint16_t*>(dst), buf.size());
          break;
      }
    });
    row_base += rows;
  }
}

void load_vector(const GgufFile& g, const std::string& name, size_t n, AlignedBuffer<float>& out) {
  const GgufTensor& t = expect(g, name, {n});
  out.resize(n);
  dequantize_rows(t, 0, 1, out.data());
}

}  // namespace

void LinearWeight::row_to_f32(size_t r, float* out) const {
  const uint8_t* src = data.data() + r * cols * dtype_bytes(dtype);
  switch (dtype) {
    case WeightDtype::F32: std::memcpy(out, src, cols * 4); break;
    case WeightDtype::F16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::f16_to_f32(reinterpret_cast<const uint16_t*>(src)[i]);
      break;
    case WeightDtype::BF16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::bf16_to_f32(reinterpret_cast<const uint16_t*>(src)[i]);
      break;
  }
}

uint64_t Model::weight_bytes() const {
  uint64_t b = token_embd_.bytes() + output_.bytes() + output_norm_.size() * 4;
  for (const auto& l : layers_)
    b += l.wqkv.bytes() + l.wo.bytes() + l.w_gate_up.bytes() + l.w_down.bytes() +
         (l.attn_norm.size() + l.ffn_norm.size()) * 4;
  return b;
}

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  GgufFile g(path);
  auto m = std::make_shared<Model>();
  m->path_ = path;
  m->file_bytes_ = g.file_size();
  m->config_ = ModelConfig::from_gguf(g);
  m->tokenizer_ = Tokenizer::from_gguf(g);
  const ModelConfig& c = m->config_;
  if (m->tokenizer_->vocab_size() != c.vocab_size)
    fail("{}: the tokenizer has {} tokens but 'token_embd.weight' has {} rows", path, m->tokenizer_->vocab_size(),
         c.vocab_size);
  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
  const WeightDtype dt = options.dtype;
  const uint64_t D = c.dim, KV = c.kv_dim(), F = c.ffn_dim, V = c.vocab_size;

  load_linear(pool, {&expect(g, "token_embd.weight", {D, V})}, dt, m->token_embd_);
  if (!c.tied_output) load_linear(pool, {&expect(g, "output.weight", {D, V})}, dt, m->output_);
  load_vector(g, "output_norm.weight", D, m->output_norm_);
  m->layers_.resize(c.n_layers);
  for (size_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights& L = m->layers_[i];
    load_vector(g, p + "attn_norm.weight", D, L.attn_norm);
    load_vector(g, p + "ffn_norm.weight", D, L.ffn_norm);
    load_linear(pool,
                {&expect(g, p + "attn_q.weight", {D, D}), &expect(g, p + "attn_k.weight", {D, KV}),
                 &expect(g, p + "attn_v.weight", {D, KV})},
                dt, L.wqkv);
    load_linear(pool, {&expect(g, p + "attn_output.weight", {D, D})}, dt, L.wo);
    load_linear(pool, {&expect(g, p + "ffn_gate.weight", {D, F}), &expect(g, p + "ffn_up.weight", {D, F})}, dt,
                L.w_gate_up);
    load_linear(pool, {&expect(g, p + "ffn_down.weight", {F, D})}, dt, L.w_down);
  }
  m->n_params_ = V * D * (c.tied_output ? 1 : 2) + D +
                 c.n_layers * (D * (D + 2 * KV) + D * D + 2 * F * D + F * D + 2 * D);
  return m;
}

}  // namespace lowbit
