// A Llama-architecture model loaded from GGUF into the runtime's own weight layout.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/aligned_buffer.h"
#include "lowbit/gguf.h"
#include "lowbit/thread_pool.h"
#include "lowbit/tokenizer.h"
#include "lowbit/weight_dtype.h"
#include "quant/packed.h"
#include "quant/recipe.h"

namespace lowbit {
namespace kernels {
enum class DenseLayout;  // kernels/ops.h
enum class WeightType;   // kernels/ops.h
}

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


// One weight matrix (a linear layer, or the embedding table) in the runtime's layout: dense rows of
// f32/f16/bf16, or a packed groupwise-quantized matrix (quant/packed.h). The bytes are either owned
// (`storage`) or borrowed from a mapped bundle that the Model keeps open.
struct Weight {
  size_t rows = 0, cols = 0;       // out × in
  bool is_packed = false;
  WeightDtype dtype = WeightDtype::F32;  // when dense
  const uint8_t* dense = nullptr;        // when dense: rows × cols values of dtype
  bool dense_tiled = false;              // dense in kernels::DenseLayout::Tiles (32-row k-major groups), not rows
  PackedMatrix packed;                   // when packed
  AlignedBuffer<uint8_t> storage;

  // Rearranges the weight into the tiles this CPU's kernels read (a packed int8-activation weight into 16-row
  // tiles, quant/row_tiles.h; a dense one into 32-row groups, kernels/ops.h) when they use them, and releases
  // the row layout (freed, or a bundle's pages returned to the page cache): the weight then takes the same
  // bytes as before. No-op for other weights and CPUs.
  void use_row_tiles(ThreadPool& pool);
  AlignedBuffer<uint8_t> tiles;  // owns packed.tiles, or the dense tiles of a weight borrowed from a bundle

  // Dense bf16 or f16 on a CPU with a kernels::matmul_bf16_dot kernel for its layout (x86 AVX512-BF16:
  // groups; aarch64 BF16: rows): prefill (from kBf16DotMinTokens tokens) then runs bf16 × bf16.
  bool prefill_in_bf16() const;
  kernels::DenseLayout dense_layout() const;  // of the dense weights: Tiles when dense_tiled, else Rows
  kernels::WeightType dense_type() const;      // of the dense weights, as the kernels name dtype
  uint64_t bytes() const;
  void row_to_f32(size_t r, float* out) const;  // one row (an embedding lookup) as fp32
  std::string format_name() const;              // "f32", "bf16", "q4_g32_zeros_a8", ...
};

struct LayerWeights {
  AlignedBuffer<float> attn_norm, ffn_norm;
  Weight wqkv;       // q, k, v projections stacked: rows = dim + 2*kv_dim
  Weight wo;         // dim × dim
  Weight w_gate_up;  // gate and up stacked: rows = 2*ffn_dim
  Weight w_down;     // dim × ffn_dim
};

struct LoadOptions {
  // No recipe: GGUF Q4_0/Q4_1/Q8_0 tensors run natively in their own bits (int8 dynamic activations, as
  // llama.cpp computes them) and float tensors as f32. A recipe quantizes in memory as torchchat does;
  // a recipe with only a precision runs everything dequantized to that type (the fp32 baseline).
  std::optional<Recipe> recipe;
  int threads = 0;  // for conversion at load; 0 = default
  // Rearrange weights for this CPU's kernels (Weight::use_row_tiles). Leave off to write the model out
  // (save_bundle, convert), which needs the row layout.
  bool row_tiles = false;
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
  const Weight& token_embedding() const { return token_embd_; }  // vocab × dim
  const AlignedBuffer<float>& output_norm() const { return output_norm_; }
  // vocab × dim; the token embedding itself when the model ties them (no copy).
  const Weight& output() const { return output_shares_embedding_ ? token_embd_ : output_; }
  const std::string& recipe_json() const { return recipe_json_; }
  // The source's GGUF metadata (hyper-parameters, tokenizer, general.*), in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  // Writes the model as a single-file .lbt bundle (weights in their runtime layout, tokenizer, config, recipe).
  void save_bundle(const std::string& path) const;

 private:
  std::string path_;
  uint64_t file_bytes_ = 0;
  uint64_t n_params_ = 0;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<LayerWeights> layers_;
  friend class ModelLoader;
  Weight token_embd_;
  AlignedBuffer<float> output_norm_;
  Weight output_;
  bool output_shares_embedding_ = false;
  std::string recipe_json_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;  // the source's hyper-parameters and tokenizer
  std::shared_ptr<const void> mapping_;          // keeps a bundle's mapping alive while weights point into it
};

}  // namespace lowbit
