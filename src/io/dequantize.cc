#include "io/dequantize.h"

#include "io/ggml_quants.h"
#include "lowbit/error.h"

namespace lowbit {

void dequantize_rows(const GgufTensor& t, size_t row0, size_t n_rows, float* out) {
  const size_t row_len = t.ne[0];
  const size_t total_rows = t.n_elements / row_len;
  if (row0 + n_rows > total_rows) fail("tensor '{}': rows [{}, {}) out of range", t.name, row0, row0 + n_rows);
  const uint64_t row_bytes = ggml_nbytes(t.type, row_len);
  dequantize_ggml(t.type, t.data + row0 * row_bytes, out, static_cast<int64_t>(n_rows * row_len));
}

}  // namespace lowbit
