// A Llama-architecture model loaded from GGUF into the runtime's own weight layout.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/aligned_buffer.h"
#include "lowbit/tokenizer.h"

namespace lowbit {

class GgufFile;

// Hyper-parameters, read from `<arch>.*` GGUF keys.
struct ModelConfig {
  std::string architecture;  // "llama"
  std::string name;
  size_t n_layers = 0;
  size_t dim = 0;
  size_t n_heads = 0;
  size_t n_kv_heads = 0;
  size_t head_dim = 0;
  size_t rope_dim = 0;
  size_t ffn_dim = 0;
  size_t vocab_size = 0;
  size_t context_length = 0;  // trained context
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_output = false;
  std::string chat_template;

  size_t kv_dim() const { return n_kv_heads * head_dim; }
  static ModelConfig from_gguf(const GgufFile& gguf);
};

// Data type the runtime holds linear weights in.
enum class WeightDtype { F32, F16, BF16 };
WeightDtype parse_weight_dtype(const std::string& s);  // "f32" | "f16" | "bf16", else Error
const char* weight_dtype_name(WeightDtype d);

// A linear layer y = W x, W stored rows × cols (out × in) in `dtype`.
struct LinearWeight {
  WeightDtype dtype = WeightDtype::F32;
  size_t rows = 0, cols = 0;
  AlignedBuffer<uint8_t> data;
  size_t bytes() const { return data.size(); }
  void row_to_f32(size_t r, float* out) const;  // one row (e.g. an embedding lookup) as fp32
};

struct LayerWeights {
  AlignedBuffer<float> attn_norm, ffn_norm;
  LinearWeight wqkv;    // q, k, v projections stacked: rows = dim + 2*kv_dim
  LinearWeight wo;      // dim × dim
  LinearWeight w_gate_up;  // gate and up stacked: rows = 2*ffn_dim
  LinearWeight w_down;  // dim × ffn_dim
};

struct LoadOptions {
  WeightDtype dtype = WeightDtype::F32;
  int threads = 0;  // for conversion at load; 0 = default
};

class Model {
 public:
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::string& path() const { return path_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // Parameters in linear layers + embeddings, and the bytes the runtime holds them in.
  uint64_t n_params() const { return n_params_; }
  uint64_t weight_bytes() const;

  const LayerWeights& layer(size_t i) const { return layers_[i]; }
  const LinearWeight& token_embedding() const { return token_embd_; }  // vocab × dim
  const AlignedBuffer<float>& output_norm() const { return output_norm_; }
  // vocab × dim; the token embedding itself when the model ties them (no copy).
  const LinearWeight& output() const { return config_.tied_output ? token_embd_ : output_; }

 private:
  std::string path_;
  uint64_t file_bytes_ = 0;
  uint64_t n_params_ = 0;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<LayerWeights> layers_;
  LinearWeight token_embd_;
  AlignedBuffer<float> output_norm_;
  LinearWeight output_;
};

}  // namespace lowbit
