#include <fmt/ranges.h>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model.h"

namespace lowbit {

namespace {
size_t positive(const GgufFile& g, const std::string& key, uint64_t value, uint64_t max) {
  if (value == 0 || value > max) fail("{}: metadata '{}' = {} is out of range (1..{})", g.path(), key, value, max);
  return static_cast<size_t>(value);
}
}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& g) {
  ModelConfig c;
  c.architecture = g.get_string("general.architecture");
  if (c.architecture != "llama")
    fail("{}: metadata 'general.architecture' = '{}' is not supported (supported: llama)", g.path(),
         c.architecture);
  const std::string a = c.architecture + ".";
  c.name = g.get_string("general.name", "");
  c.n_layers = positive(g, a + "block_count", g.get_uint(a + "block_count"), 1024);
  c.dim = positive(g, a + "embedding_length", g.get_uint(a + "embedding_length"), 1 << 16);
  c.n_heads = positive(g, a + "attention.head_count", g.get_uint(a + "attention.head_count"), 1024);
  c.n_kv_heads = positive(g, a + "attention.head_count_kv",
                          g.get_uint(a + "attention.head_count_kv", c.n_heads), 1024);
  c.ffn_dim = positive(g, a + "feed_forward_length", g.get_uint(a + "feed_forward_length"), 1 << 18);
  c.context_length = positive(g, a + "context_length", g.get_uint(a + "context_length", 2048), 1 << 24);
  if (c.dim % c.n_heads != 0)
    fail("{}: '{}embedding_length' {} is not a multiple of '{}attention.head_count' {}", g.path(), a, c.dim, a,
         c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0)
    fail("{}: '{}attention.head_count' {} is not a multiple of '{}attention.head_count_kv' {}", g.path(), a,
         c.n_heads, a, c.n_kv_heads);
  c.head_dim = c.dim / c.n_heads;
  c.rope_dim = g.get_uint(a + "rope.dimension_count", c.head_dim);
  if (c.rope_dim == 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0)
    fail("{}: metadata '{}rope.dimension_count' = {} is invalid for head size {}", g.path(), a, c.rope_dim,
         c.head_dim);
  c.rope_freq_base = static_cast<float>(g.get_float(a + "rope.freq_base", 10000.0));
  c.rms_eps = static_cast<float>(g.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(c.rope_freq_base > 0)) fail("{}: metadata '{}rope.freq_base' must be positive", g.path(), a);
  if (!(c.rms_eps > 0)) fail("{}: metadata '{}attention.layer_norm_rms_epsilon' must be positive", g.path(), a);
  if (const GgufTensor* embd = g.find_tensor("token_embd.weight")) {
    if (embd->ne.size() != 2 || embd->ne[0] != c.dim)
      fail("{}: tensor 'token_embd.weight' has shape [{}], expected [{}, vocab]", g.path(),
           fmt::join(embd->ne, ", "), c.dim);
    c.vocab_size = embd->ne[1];
    if (g.has(a + "vocab_size") && g.get_uint(a + "vocab_size") != c.vocab_size)
      fail("{}: metadata '{}vocab_size' = {} disagrees with tensor 'token_embd.weight' ({} rows)", g.path(), a,
           g.get_uint(a + "vocab_size"), c.vocab_size);
    c.tied_output = g.find_tensor("output.weight") == nullptr;
  } else {
    // Metadata without tensors (a bundle's): the vocabulary gives the size; the bundle says whether it is tied.
    c.vocab_size = g.has(a + "vocab_size") ? g.get_uint(a + "vocab_size")
                                           : g.get_string_array("tokenizer.ggml.tokens").size();
    if (c.vocab_size == 0) fail("{}: the vocabulary is empty", g.path());
  }
  c.chat_template = g.get_string("tokenizer.chat_template", "");
  return c;
}

WeightDtype parse_weight_dtype(const std::string& s) {
  if (s == "f32" || s == "fp32") return WeightDtype::F32;
  if (s == "f16" || s == "fp16") return WeightDtype::F16;
  if (s == "bf16") return WeightDtype::BF16;
  fail("--dtype '{}' is not one of f32, f16, bf16", s);
}

const char* weight_dtype_name(WeightDtype d) {
  switch (d) {
    case WeightDtype::F32: return "f32";
    case WeightDtype::F16: return "f16";
    case WeightDtype::BF16: return "bf16";
  }
  return "?";
}

}  // namespace lowbit
