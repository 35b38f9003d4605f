#include "io/encoded_rows.h"

#include <algorithm>
#include <vector>

#include "io/ggml_quants.h"

namespace lowbit {

GgufTensorSource encoded_rows_source(ThreadPool& pool, GgmlType type, uint64_t row, uint64_t rows, RowFill fill) {
  return [&pool, type, row, rows, fill = std::move(fill)](GgufSink& sink) {
    const size_t row_bytes = ggml_nbytes(type, row);
    const uint64_t batch = std::max<uint64_t>(1, (size_t{8} << 20) / (row * 4));
    std::vector<uint8_t> buf(std::min(batch, rows) * row_bytes);
    for (uint64_t r0 = 0; r0 < rows; r0 += batch) {
      const uint64_t n = std::min(batch, rows - r0);
      pool.parallel_for(n, 1, [&](size_t a, size_t b) {
        std::vector<float> x((b - a) * row);
        fill(r0 + a, b - a, x.data());
        for (size_t i = a; i < b; ++i)
          quantize_ggml(type, x.data() + (i - a) * row, buf.data() + i * row_bytes, static_cast<int64_t>(row));
      });
      sink.write(buf.data(), n * row_bytes);
    }
  };
}

}  // namespace lowbit
