// Dequantize rows of a GGUF tensor (F32, F16, BF16, Q8_0, Q4_0, Q4_1) to fp32.
#pragma once
#include <cstddef>

#include "lowbit/gguf.h"

namespace lowbit {

// Rows are ne[0] values long. Writes n_rows * ne[0] floats to `out`.
void dequantize_rows(const GgufTensor& t, size_t row0, size_t n_rows, float* out);

}  // namespace lowbit
