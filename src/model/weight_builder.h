// Turns GGUF tensors into runtime Weights following a recipe (or, without one, natively): quantize with RTN,
// map Q4_0/Q4_1/Q8_0 blocks in place of re-quantizing, or convert to dense f32/f16/bf16.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lowbit/gguf.h"
#include "lowbit/model.h"
#include "lowbit/thread_pool.h"
#include "quant/recipe.h"

namespace lowbit {

enum class WeightRole { Linear, Embedding, Output };

class WeightBuilder {
 public:
  // row_tiles: rearrange each weight for this CPU's kernels once built (Weight::use_row_tiles).
  WeightBuilder(ThreadPool& pool, const std::optional<Recipe>& recipe, bool tied_output, bool row_tiles = false);

  // Stacks `parts` (same row length) into one weight of the given role.
  Weight make(const std::vector<const GgufTensor*>& parts, WeightRole role) const;
  // For a tied model: does the output projection need its own copy of the embedding (a different format)?
  bool output_differs_from_embedding() const;

 private:
  Weight make_in_row_layout(const std::vector<const GgufTensor*>& parts, WeightRole role) const;
  std::optional<QuantSpec> spec_for(WeightRole role) const;
  Weight make_dense(const std::vector<const GgufTensor*>& parts, WeightDtype dtype) const;
  Weight make_quantized(const std::vector<const GgufTensor*>& parts, const QuantSpec& spec, bool a8) const;
  Weight make_native(const std::vector<const GgufTensor*>& parts) const;
  // The recipe's group size for rows of `cols` weights, or the nearest smaller one that divides them (noted).
  size_t group_for_row(const QuantSpec& spec, size_t cols, const std::string& tensor) const;

  ThreadPool& pool_;
  std::optional<Recipe> recipe_;
  bool tied_;
  bool row_tiles_;
  mutable std::set<std::string> adjusted_groups_;  // substitutions already noted
};

}  // namespace lowbit
