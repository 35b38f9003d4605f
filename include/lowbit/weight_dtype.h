// The unquantized types the runtime can hold weights in.
#pragma once
#include <string>

namespace lowbit {

enum class WeightDtype { F32, F16, BF16 };
WeightDtype parse_weight_dtype(const std::string& s);  // "f32" | "f16" | "bf16", else Error naming --dtype
const char* weight_dtype_name(WeightDtype d);

}  // namespace lowbit
