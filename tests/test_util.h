// Helpers shared by the tests: temporary directories, file bytes, a portable deterministic RNG, and a generator of
// tiny random Llama models in GGUF (written with GgufWriter, metadata and tensor names as llama.cpp's converter
// writes them), so runtime tests need no downloaded model.
//
//   lowbit::test::TempDir dir;
//   lowbit::test::TinyLlamaConfig cfg;            // 2 layers, dim 64, 4 heads / 2 kv heads, ffn 128, F32
//   cfg.weight_type = lowbit::GgmlType::Q4_0;
//   auto info = lowbit::test::write_tiny_llama(dir.file("tiny.gguf"), cfg);
//   // the exact floats each tensor was made from (before quantization):
//   std::vector<float> w = lowbit::test::tiny_llama_values(cfg, "blk.0.attn_q.weight");
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/ggml_quants.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/gguf_writer.h"

namespace lowbit::test {

// ---------------------------------------------------------------------------------------------------------------
// Files

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when the object is destroyed.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lowbit-test-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw Error("cannot create a temporary directory from " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open for reading");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_file_bytes(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(path + ": write failed");
}

// Runs fn; returns the lowbit::Error message it threw, or nullopt if it returned normally. Other exception types
// propagate (so a test sees them as failures).
inline std::optional<std::string> error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

#ifdef LOWBIT_SHARED_DIR
inline std::string shared_dir() { return LOWBIT_SHARED_DIR; }
#endif

// The real model (SmolLM2-135M-Instruct Q4_1, fetched by scripts/get-models.sh): $LOWBIT_MODEL if set, else
// ~/.cache/lowbit/SmolLM2-135M-Instruct.Q4_1.gguf. Empty if the file does not exist (tests then GTEST_SKIP).
inline std::string real_model_path() {
  std::string p;
  if (const char* env = std::getenv("LOWBIT_MODEL"); env && *env) {
    p = env;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    p = std::string(home) + "/.cache/lowbit/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  std::error_code ec;
  return !p.empty() && std::filesystem::is_regular_file(p, ec) ? p : std::string();
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic random numbers: splitmix64, identical on every platform and standard library (unlike the
// <random> distributions), so generated models are byte-identical everywhere.

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

 private:
  uint64_t s_;
};

// A seed for one named stream (e.g. one tensor), independent of the order streams are used in.
inline uint64_t stream_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return Rng(seed ^ h).next();
}

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Byte-level BPE vocabulary pieces

// GPT-2's bytes_to_unicode: printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68
// bytes map, in increasing order, to U+0100.. (so ' ' is 'Ġ' U+0120, '\n' is 'Ċ' U+010A). Returned as UTF-8.
inline std::string gpt2_byte_token(uint8_t b) {
  auto printable = [](int c) { return (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255); };
  uint32_t cp = b;
  if (!printable(b)) {
    uint32_t n = 0;
    for (int c = 0; c < b; ++c) n += printable(c) ? 0 : 1;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {  // all code points here are < 0x800
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Tiny random Llama models

struct TinyLlamaConfig {
  int n_layers = 2;
  int dim = 64;         // embedding length; a multiple of 32 for quantized types
  int n_heads = 4;
  int n_kv_heads = 2;   // n_heads must be a multiple; kv_dim = dim / n_heads * n_kv_heads
  int ffn = 128;        // feed-forward length; a multiple of 32 for quantized types
  GgmlType weight_type = GgmlType::F32;    // attention and FFN weights: F32, F16, BF16, Q8_0, Q4_0, Q4_1
  std::optional<GgmlType> embd_type;       // token_embd.weight (default: weight_type)
  std::optional<GgmlType> output_type;     // output.weight when untied (default: weight_type)
  bool tied_output = true;                 // true: no output.weight (the embedding is the output projection)
  // Vocabulary: a byte-level "gpt2" vocab built here (256 byte tokens, a few merges, specials) whose
  // tokenizer.ggml.pre is `pre` ("gpt-2": bytes are ids 0..255, then merges, then <|endoftext|> = BOS = EOS;
  // "smollm": <|endoftext|>, <|im_start|> (BOS), <|im_end|> (EOS) are ids 0, 1, 2 as in SmolLM2, then the rest,
  // plus a ChatML chat template) — or, if `vocab_gguf` is set, every tokenizer.* key copied from that GGUF
  // (e.g. shared_dir() + "/tokenizers/ggml-vocab-gpt-2.gguf"); llama.vocab_size follows the vocabulary.
  std::string pre = "gpt-2";
  std::string vocab_gguf;
  uint32_t context_length = 256;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  uint64_t seed = 42;
  uint32_t gguf_version = 3;
  uint32_t alignment = 32;  // general.alignment is written only when it differs from the default 32
};

struct TinyTensorSpec {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;  // fastest-first: a linear weight out×in is {in, out}
  uint64_t n_elements() const {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    return n;
  }
};

struct TinyLlamaInfo {
  std::string path;
  uint32_t vocab_size = 0;
  uint32_t head_dim = 0;
  uint32_t kv_dim = 0;
  size_t n_tensors = 0;
  uint64_t file_bytes = 0;
};

// The byte-level vocabulary described at TinyLlamaConfig::pre.
struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // llama.cpp: 1 normal, 3 control
  std::vector<std::string> merges;   // rank order
  uint32_t bos = 0, eos = 0;
};

inline TinyVocab tiny_byte_vocab(const std::string& pre) {
  if (pre != "gpt-2" && pre != "smollm") throw Error("tiny vocab: pre '" + pre + "' is not one of gpt-2, smollm");
  TinyVocab v;
  auto add = [&](std::string t, int32_t type) {
    v.tokens.push_back(std::move(t));
    v.token_types.push_back(type);
    return static_cast<uint32_t>(v.tokens.size() - 1);
  };
  if (pre == "smollm") {
    add("<|endoftext|>", 3);
    v.bos = add("<|im_start|>", 3);
    v.eos = add("<|im_end|>", 3);
  }
  for (int b = 0; b < 256; ++b) add(gpt2_byte_token(static_cast<uint8_t>(b)), 1);
  // A few merges of common English pieces; each result is a token. "Ġ" is the space byte.
  const char* merges[][2] = {{"Ġ", "t"}, {"h", "e"},  {"Ġt", "he"}, {"i", "n"}, {"Ġ", "a"}, {"e", "r"},
                             {"o", "n"}, {"Ġ", "s"},  {"r", "e"},   {"a", "n"}, {"in", "g"}, {"Ġ", "w"},
                             {"Ġ", "o"}, {"l", "l"},  {"Ġ", "c"},   {"e", "s"}};
  for (const auto& m : merges) {
    const std::string a = m[0], b = m[1];
    v.merges.push_back(a + " " + b);
    add(a + b, 1);
  }
  if (pre == "gpt-2") v.bos = v.eos = add("<|endoftext|>", 3);
  return v;
}

// The tensors of a tiny model, in the order they are written.
inline std::vector<TinyTensorSpec> tiny_llama_tensors(const TinyLlamaConfig& c, uint32_t vocab_size) {
  const uint64_t dim = c.dim, ffn = c.ffn, kv_dim = uint64_t(c.dim) / c.n_heads * c.n_kv_heads;
  const GgmlType w = c.weight_type;
  std::vector<TinyTensorSpec> t;
  t.push_back({"token_embd.weight", c.embd_type.value_or(w), {dim, vocab_size}});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    t.push_back({p + "attn_norm.weight", GgmlType::F32, {dim}});
    t.push_back({p + "attn_q.weight", w, {dim, dim}});
    t.push_back({p + "attn_k.weight", w, {dim, kv_dim}});
    t.push_back({p + "attn_v.weight", w, {dim, kv_dim}});
    t.push_back({p + "attn_output.weight", w, {dim, dim}});
    t.push_back({p + "ffn_norm.weight", GgmlType::F32, {dim}});
    t.push_back({p + "ffn_gate.weight", w, {dim, ffn}});
    t.push_back({p + "ffn_up.weight", w, {dim, ffn}});
    t.push_back({p + "ffn_down.weight", w, {ffn, dim}});
  }
  t.push_back({"output_norm.weight", GgmlType::F32, {dim}});
  if (!c.tied_output) t.push_back({"output.weight", c.output_type.value_or(w), {dim, vocab_size}});
  return t;
}

namespace detail {

// Values of one tensor, generated row by row from its own stream: norms in [0.8, 1.2]; the embedding in
// [-0.5, 0.5]; linear weights uniform with variance 1/in (a = sqrt(3/in)), so activations keep their scale.
class TinyValueStream {
 public:
  TinyValueStream(uint64_t seed, const TinyTensorSpec& spec) : rng_(stream_seed(seed, spec.name)) {
    if (spec.name.find("norm") != std::string::npos) {
      lo_ = 0.8f, hi_ = 1.2f;
    } else if (spec.name == "token_embd.weight") {
      lo_ = -0.5f, hi_ = 0.5f;
    } else {
      hi_ = std::sqrt(3.0f / static_cast<float>(spec.ne[0]));
      lo_ = -hi_;
    }
  }
  void fill(float* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = rng_.uniform(lo_, hi_);
  }

 private:
  Rng rng_;
  float lo_ = -1.0f, hi_ = 1.0f;
};

inline uint32_t llama_file_type(GgmlType t) {
  switch (t) {  // llama.cpp's llama_ftype
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::BF16: return 32;
    default: throw Error("tiny llama: weight type " + ggml_type_name(t) + " is not supported");
  }
}

inline uint32_t vocab_size_of(const TinyLlamaConfig& c) {
  if (c.vocab_gguf.empty()) return static_cast<uint32_t>(tiny_byte_vocab(c.pre).tokens.size());
  GgufFile v(c.vocab_gguf);
  return static_cast<uint32_t>(v.get_string_array("tokenizer.ggml.tokens").size());
}

}  // namespace detail

// The exact floats tensor `name` of the model written by write_tiny_llama(cfg) was quantized from.
inline std::vector<float> tiny_llama_values(const TinyLlamaConfig& cfg, const std::string& name) {
  for (const auto& spec : tiny_llama_tensors(cfg, detail::vocab_size_of(cfg))) {
    if (spec.name != name) continue;
    std::vector<float> v(spec.n_elements());
    detail::TinyValueStream(cfg.seed, spec).fill(v.data(), v.size());
    return v;
  }
  throw Error("tiny llama: no tensor named '" + name + "'");
}

// Writes a tiny random Llama GGUF to `path` (atomically). Throws lowbit::Error on a bad configuration.
inline TinyLlamaInfo write_tiny_llama(const std::string& path, const TinyLlamaConfig& cfg = {}) {
  const TinyLlamaConfig& c = cfg;
  auto bad = [&](const std::string& why) { throw Error(path + ": tiny llama config: " + why); };
  if (c.n_layers < 1 || c.dim < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.ffn < 1) bad("sizes must be positive");
  if (c.dim % c.n_heads != 0) bad("dim is not a multiple of n_heads");
  if (c.n_heads % c.n_kv_heads != 0) bad("n_heads is not a multiple of n_kv_heads");
  if ((c.dim / c.n_heads) % 2 != 0) bad("head_dim must be even for RoPE");

  TinyLlamaInfo info;
  info.path = path;
  info.head_dim = static_cast<uint32_t>(c.dim / c.n_heads);
  info.kv_dim = info.head_dim * static_cast<uint32_t>(c.n_kv_heads);

  GgufWriter w(path, GgufWriterOptions{c.gguf_version});
  if (c.alignment != 32) w.add_uint32("general.alignment", c.alignment);
  w.add_string("general.architecture", "llama");
  w.add_string("general.type", "model");
  w.add_string("general.name", "tiny-random-llama");
  w.add_uint32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  w.add_uint32("llama.context_length", c.context_length);
  w.add_uint32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.add_uint32("llama.feed_forward_length", static_cast<uint32_t>(c.ffn));
  w.add_uint32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.add_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.add_float32("llama.rope.freq_base", c.rope_freq_base);
  w.add_float32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_uint32("general.file_type", detail::llama_file_type(c.weight_type));

  if (c.vocab_gguf.empty()) {
    const TinyVocab v = tiny_byte_vocab(c.pre);
    info.vocab_size = static_cast<uint32_t>(v.tokens.size());
    w.add_uint32("llama.vocab_size", info.vocab_size);
    w.add_uint32("llama.rope.dimension_count", info.head_dim);
    if (c.pre == "smollm") {
      w.add_bool("tokenizer.ggml.add_space_prefix", false);
      w.add_bool("tokenizer.ggml.add_bos_token", false);
    }
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", c.pre);
    w.add_string_array("tokenizer.ggml.tokens", v.tokens);
    w.add_int32_array("tokenizer.ggml.token_type", v.token_types);
    w.add_string_array("tokenizer.ggml.merges", v.merges);
    w.add_uint32("tokenizer.ggml.bos_token_id", v.bos);
    w.add_uint32("tokenizer.ggml.eos_token_id", v.eos);
    if (c.pre == "smollm") {
      w.add_uint32("tokenizer.ggml.unknown_token_id", 0);
      w.add_uint32("tokenizer.ggml.padding_token_id", v.eos);
      w.add_string("tokenizer.chat_template",
                   "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                   "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                   "{% endif %}");
    }
  } else {
    GgufFile vf(c.vocab_gguf);
    info.vocab_size = static_cast<uint32_t>(vf.get_string_array("tokenizer.ggml.tokens").size());
    w.add_uint32("llama.vocab_size", info.vocab_size);
    w.add_uint32("llama.rope.dimension_count", info.head_dim);
    w.copy_metadata(vf, [](const std::string& key) { return key.rfind("tokenizer.", 0) == 0; });
  }
  if (c.weight_type != GgmlType::F32 && c.weight_type != GgmlType::F16 && c.weight_type != GgmlType::BF16)
    w.add_uint32("general.quantization_version", 2);

  const std::vector<TinyTensorSpec> specs = tiny_llama_tensors(c, info.vocab_size);
  for (const auto& spec : specs) {
    if (spec.type != GgmlType::F32) detail::llama_file_type(spec.type);  // rejects types we cannot quantize to
    // Generate and quantize row by row while writing: nothing but one row is ever held in memory.
    w.add_tensor(spec.name, spec.type, spec.ne, [spec, seed = c.seed](GgufSink& sink) {
      detail::TinyValueStream values(seed, spec);
      const uint64_t row = spec.ne[0], rows = spec.n_elements() / row;
      std::vector<float> x(row);
      std::vector<uint8_t> q(ggml_nbytes(spec.type, row));
      for (uint64_t r = 0; r < rows; ++r) {
        values.fill(x.data(), x.size());
        quantize_ggml(spec.type, x.data(), q.data(), static_cast<int64_t>(row));
        sink.write(q.data(), q.size());
      }
    });
  }
  info.n_tensors = specs.size();
  info.file_bytes = w.write();
  return info;
}

}  // namespace lowbit::test
