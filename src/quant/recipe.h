// Quantization recipes: the JSON torchchat's --quantize takes (a string or a file), turned into a per-tensor
// plan. Keys and their meaning follow torchchat (see docs/recipes.md):
//   "linear:int8" / "linear:int4"   {"groupsize": G}                         asymmetric groupwise weight-only
//   "linear:a8w4dq"                 {"groupsize": G}                         int8 dynamic activations, 4-bit symmetric weights
//   "linear:a8wxdq"                 {"bitwidth": 1..8, "groupsize": G, "has_weight_zeros": bool}
//   "embedding"                     {"bitwidth": 2|4|8, "groupsize": G}      symmetric groupwise
//   "embedding:wx"                  {"bitwidth": 1..8, "groupsize": G}       groupwise with zeros
//   "output"                        "none" (keep it unquantized) or {"scheme": <one of the keys above>, ...that
//                                   scheme's keys}: overrides the output projection
//   "precision"                     {"dtype": "fp32"|"bf16"|"fp16"} (and torchchat's other spellings) for what
//                                   stays unquantized
//   "executor"                      {"accelerator": "cpu"}
// G = 0 means channelwise (one group per row); otherwise G must divide the row length (checked per tensor
// when the plan is applied, with an error naming the tensor).
#pragma once
#include <optional>
#include <string>

#include "lowbit/weight_dtype.h"

namespace lowbit {

// How one weight matrix is quantized.
struct QuantSpec {
  int bits = 4;                 // 1..8
  int group_size = 32;          // 0 = channelwise
  bool has_zeros = true;        // asymmetric (scale + zero/min) vs symmetric (scale only)
  bool dynamic_activations = false;  // a8: activations quantized per token to int8 at run time
  std::string scheme;           // the recipe key it came from, e.g. "linear:a8wxdq" (for "output": the scheme
                                // named by its "scheme" key)

  bool operator==(const QuantSpec&) const = default;
};

struct Recipe {
  std::optional<QuantSpec> linear;     // every linear layer in the blocks
  std::optional<QuantSpec> embedding;  // the token embedding table
  std::optional<QuantSpec> output;     // the output projection; if unset and the output is tied, it follows
                                       // `embedding`; if untied, it follows `linear`
  bool output_unquantized = false;     // "output": "none" — the projection stays at `precision` (`output` is
                                       // then unset); a tied model with a quantized embedding then needs the
                                       // table twice (quantized for lookups, unquantized for the projection)
  WeightDtype precision = WeightDtype::F32;  // for everything left unquantized
  bool precision_given = false;
  std::string accelerator = "cpu";
  std::string json;  // the canonical JSON text (stored in bundles)

  // `text` is a JSON object or the path of a file holding one. Throws lowbit::Error naming the key or value.
  static Recipe parse(const std::string& text);
  bool empty() const { return !linear && !embedding && !output; }

  // What the output projection gets, after the rules above; nullopt = unquantized, at `precision`.
  std::optional<QuantSpec> output_spec(bool tied_output) const {
    if (output_unquantized) return std::nullopt;
    if (output) return output;
    return tied_output ? embedding : linear;
  }
};

// One line for logs: "linear:int4 4-bit group 32 asymmetric weight-only" (group "channelwise" when 0).
std::string describe(const QuantSpec& spec);

}  // namespace lowbit
