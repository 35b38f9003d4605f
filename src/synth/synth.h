// Synthetic Llama models: real dimensions, random weights, written as GGUF so llama.cpp loads the very same
// file. They measure speed where it is memory-bound (SmolLM2 fits in the L3 cache; TinyLlama does not).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/gguf.h"
#include "lowbit/thread_pool.h"

namespace lowbit {

struct SynthPreset {
  std::string name;
  size_t n_layers, dim, n_heads, n_kv_heads, ffn_dim, vocab_size, context_length;
  float rope_freq_base;
  bool tied_output;
};

// tinyllama-1.1b, llama-3.2-1b, llama-2-7b (published dimensions), and "tiny" (for tests).
const std::vector<SynthPreset>& synth_presets();
const SynthPreset& find_synth_preset(const std::string& name);  // Error listing the names when unknown

struct SynthOptions {
  SynthPreset preset;
  // A GGUF whose tokenizer.* keys are copied (e.g. ../shared/tokenizers/ggml-vocab-llama-spm.gguf); if it has
  // fewer tokens than the preset, "[PAD<i>]" tokens of type UNUSED fill the rest (as llama.cpp's converters
  // pad). Empty: a byte-fallback SentencePiece vocabulary (<unk>, <s>, </s>, 256 byte tokens, then UNUSED).
  std::string vocab_gguf;
  GgmlType type = GgmlType::F16;  // 2-D weights: F32, F16, BF16, Q8_0 or Q4_0; norms are always F32
  uint64_t seed = 1;
};

// Writes the model to `path` (temporary name, then rename), generating and encoding rows in parallel while
// streaming; memory use is a few MiB whatever the model size. Returns the file size in bytes.
uint64_t write_synthetic_llama(const std::string& path, const SynthOptions& options, ThreadPool& pool);

// The fp32 values of row `row` of tensor `name` in a synthetic model of this seed (before encoding):
// norms 1 ± 0.2, embedding/output rows uniform in ±0.5 / ±sqrt(3/dim), linear rows uniform with variance
// 1/in so activations keep their scale through the layers.
void synth_row(uint64_t seed, const std::string& name, uint64_t row, float* out, size_t n);

}  // namespace lowbit
