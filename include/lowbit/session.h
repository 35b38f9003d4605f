// A Session runs one sequence through a Model: it owns the KV cache and the scratch activations.
// prefill(tokens) processes a whole prompt with matrix–matrix products; decode(token) one token with
// matrix–vector products. Both return logits.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/aligned_buffer.h"
#include "lowbit/model.h"
#include "lowbit/thread_pool.h"

namespace lowbit {

// Element type of the KV cache: fp32; IEEE half (half the memory, and half the bytes decode reads per key at
// long context); or int8 with one fp32 scale per stored head vector (a quarter plus 4 bytes per head_dim
// values). Keys and values are rounded once, when stored.
enum class KvType { F32, F16, Int8 };
KvType parse_kv_type(const std::string& s);  // "f32" | "f16" | "int8"; anything else: an error naming --kv-type

struct SessionOptions {
  size_t n_ctx = 4096;     // KV cache length (clamped to nothing: may exceed the trained context)
  int threads = 0;         // 0 = physical cores
  size_t max_batch = 512;  // prefill processes at most this many tokens per forward pass
  KvType kv_type = KvType::F32;
};

class Session {
 public:
  Session(std::shared_ptr<const Model> model, const SessionOptions& options = {});

  // Appends `tokens` at positions n_past()..; returns the logits of the last token (vocab floats), or of every
  // token (tokens.size() × vocab) when all_logits. Throws if the tokens do not fit in the context.
  const float* prefill(const std::vector<int32_t>& tokens, bool all_logits = false);
  // Appends one token; returns its logits.
  const float* decode(int32_t token);

  size_t n_past() const { return n_past_; }
  size_t n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }
  // Drops everything after position n (n <= n_past()).
  void truncate(size_t n);

  const Model& model() const { return *model_; }
  ThreadPool& pool() { return pool_; }
  uint64_t kv_cache_bytes() const {
    return (k_cache_.size() + v_cache_.size() + k_scale_.size() + v_scale_.size()) * sizeof(float) +
           (k16_.size() + v16_.size()) * sizeof(uint16_t) + k8_.size() + v8_.size();
  }

 private:
  // Runs the transformer on n tokens at positions n_past_.., writing logits for the last token (or all).
  void forward(const int32_t* tokens, size_t n, bool all_logits, float* logits_out);
  void ensure_scratch(size_t n);

  std::shared_ptr<const Model> model_;
  size_t n_ctx_;
  size_t max_batch_;
  size_t n_past_ = 0;
  ThreadPool pool_;
  KvType kv_type_;
  AlignedBuffer<float> k_cache_, v_cache_;  // [layer][kv head][pos][head_dim] (KvType::F32)
  AlignedBuffer<uint16_t> k16_, v16_;       // the same as halves (KvType::F16)
  AlignedBuffer<int8_t> k8_, v8_;           // the same as int8 codes (KvType::Int8) ...
  AlignedBuffer<float> k_scale_, v_scale_;  // ... and their scales, [layer][kv head][pos]
  size_t scratch_tokens_ = 0;
  AlignedBuffer<float> x_, xb_, qkv_, q_, att_, ffn_, ffn_out_, logits_;
  std::vector<float> all_logits_;
};

}  // namespace lowbit
