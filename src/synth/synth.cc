#include "synth/synth.h"

#include <cmath>
#include <utility>

#include "io/encoded_rows.h"
#include "io/ggml_quants.h"
#include "lowbit/error.h"
#include "lowbit/gguf_writer.h"

namespace lowbit {

const std::vector<SynthPreset>& synth_presets() {
  // Published configurations (config.json of each model). Llama-3.2's rope scaling is not reproduced: it
  // changes no speed figure.
  static const std::vector<SynthPreset> presets = {
      {"tinyllama-1.1b", 22, 2048, 32, 4, 5632, 32000, 2048, 10000.0f, false},
      {"llama-3.2-1b", 16, 2048, 32, 8, 8192, 128256, 131072, 500000.0f, true},
      {"llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, 10000.0f, false},
      {"tiny", 2, 64, 4, 2, 128, 320, 256, 10000.0f, false},
  };
  return presets;
}

const SynthPreset& find_synth_preset(const std::string& name) {
  std::string names;
  for (const auto& p : synth_presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  fail("--preset '{}' is not one of {}", name, names);
}

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct TensorPlan {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;  // fastest first
};

std::vector<TensorPlan> plan_tensors(const SynthPreset& p, size_t vocab, GgmlType w) {
  const uint64_t dim = p.dim, ffn = p.ffn_dim, kv = p.dim / p.n_heads * p.n_kv_heads;
  std::vector<TensorPlan> t;
  t.push_back({"token_embd.weight", w, {dim, vocab}});
  for (size_t l = 0; l < p.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back({b + "attn_norm.weight", GgmlType::F32, {dim}});
    t.push_back({b + "attn_q.weight", w, {dim, dim}});
    t.push_back({b + "attn_k.weight", w, {dim, kv}});
    t.push_back({b + "attn_v.weight", w, {dim, kv}});
    t.push_back({b + "attn_output.weight", w, {dim, dim}});
    t.push_back({b + "ffn_norm.weight", GgmlType::F32, {dim}});
    t.push_back({b + "ffn_gate.weight", w, {dim, ffn}});
    t.push_back({b + "ffn_up.weight", w, {dim, ffn}});
    t.push_back({b + "ffn_down.weight", w, {ffn, dim}});
  }
  t.push_back({"output_norm.weight", GgmlType::F32, {dim}});
  if (!p.tied_output) t.push_back({"output.weight", w, {dim, vocab}});
  return t;
}

// tokenizer.* keys: copied from a vocab GGUF and padded, or a byte-fallback SentencePiece vocabulary.
void add_vocab(GgufWriter& w, const SynthOptions& o) {
  const size_t vocab = o.preset.vocab_size;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  if (!o.vocab_gguf.empty()) {
    GgufFile v(o.vocab_gguf);
    tokens = v.get_string_array("tokenizer.ggml.tokens");
    if (tokens.size() > vocab)
      fail("{}: {} tokens, more than the preset's vocabulary of {}", o.vocab_gguf, tokens.size(), vocab);
    w.copy_metadata(v, [](const std::string& k) {
      return k.rfind("tokenizer.", 0) == 0 && k != "tokenizer.ggml.tokens" && k != "tokenizer.ggml.token_type" &&
             k != "tokenizer.ggml.scores";
    });
    if (v.has("tokenizer.ggml.token_type")) {
      for (auto x : v.get_int_array("tokenizer.ggml.token_type")) types.push_back(static_cast<int32_t>(x));
    } else {
      types.assign(tokens.size(), 1);
    }
    if (v.has("tokenizer.ggml.scores"))
      for (auto x : v.get_float_array("tokenizer.ggml.scores")) scores.push_back(static_cast<float>(x));
  } else {
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string("tokenizer.ggml.pre", "default");
    auto add = [&](std::string t, int32_t type) { tokens.push_back(std::move(t)), types.push_back(type); };
    add("<unk>", 2), add("<s>", 3), add("</s>", 3);
    for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 6);
    scores.assign(tokens.size(), 0.0f);
    w.add_uint32("tokenizer.ggml.unknown_token_id", 0);
    w.add_uint32("tokenizer.ggml.bos_token_id", 1);
    w.add_uint32("tokenizer.ggml.eos_token_id", 2);
  }
  for (size_t i = tokens.size(); i < vocab; ++i) {
    tokens.push_back(fmt::format("[PAD{}]", i));
    types.push_back(5);  // UNUSED
  }
  if (!scores.empty()) scores.resize(vocab, 0.0f);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_int32_array("tokenizer.ggml.token_type", types);
  if (!scores.empty()) w.add_float32_array("tokenizer.ggml.scores", scores);
}

}  // namespace

void synth_row(uint64_t seed, const std::string& name, uint64_t row, float* out, size_t n) {
  uint64_t s = seed ^ hash_name(name) ^ (row * 0xd1342543de82ef95ull);
  float lo, hi;
  if (name.find("norm") != std::string::npos) {
    lo = 0.8f, hi = 1.2f;
  } else if (name == "token_embd.weight") {
    lo = -0.5f, hi = 0.5f;
  } else {
    hi = std::sqrt(3.0f / static_cast<float>(n));
    lo = -hi;
  }
  const float scale = (hi - lo) / 16777216.0f;  // 24 random bits per value
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const uint64_t r = splitmix64(s);
    out[i] = lo + scale * static_cast<float>(r >> 40);
    out[i + 1] = lo + scale * static_cast<float>((r >> 8) & 0xffffff);
  }
  if (i < n) out[i] = lo + scale * static_cast<float>(splitmix64(s) >> 40);
}

uint64_t write_synthetic_llama(const std::string& path, const SynthOptions& o, ThreadPool& pool) {
  const SynthPreset& p = o.preset;
  const uint32_t ftype = llama_ftype_for_writing(o.type);
  GgufWriter w(path);
  w.add_string("general.architecture", "llama");
  w.add_string("general.type", "model");
  w.add_string("general.name", "synthetic " + p.name + " (random weights, lowbit synth)");
  w.add_uint32("llama.block_count", static_cast<uint32_t>(p.n_layers));
  w.add_uint32("llama.context_length", static_cast<uint32_t>(p.context_length));
  w.add_uint32("llama.embedding_length", static_cast<uint32_t>(p.dim));
  w.add_uint32("llama.feed_forward_length", static_cast<uint32_t>(p.ffn_dim));
  w.add_uint32("llama.attention.head_count", static_cast<uint32_t>(p.n_heads));
  w.add_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(p.n_kv_heads));
  w.add_uint32("llama.rope.dimension_count", static_cast<uint32_t>(p.dim / p.n_heads));
  w.add_float32("llama.rope.freq_base", p.rope_freq_base);
  w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_uint32("llama.vocab_size", static_cast<uint32_t>(p.vocab_size));
  w.add_uint32("general.file_type", ftype);
  if (o.type == GgmlType::Q4_0 || o.type == GgmlType::Q8_0) w.add_uint32("general.quantization_version", 2);
  add_vocab(w, o);

  for (const TensorPlan& t : plan_tensors(p, p.vocab_size, o.type)) {
    const uint64_t row = t.ne[0], rows = t.ne.size() > 1 ? t.ne[1] : 1;
    RowFill fill = [name = t.name, row, seed = o.seed](uint64_t r0, size_t n, float* out) {
      for (size_t i = 0; i < n; ++i) synth_row(seed, name, r0 + i, out + i * row, row);
    };
    w.add_tensor(t.name, t.type, t.ne, encoded_rows_source(pool, t.type, row, rows, std::move(fill)));
  }
  return w.write();
}

}  // namespace lowbit
