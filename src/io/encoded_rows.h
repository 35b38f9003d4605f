// A GGUF tensor source that fills fp32 rows and encodes them (io/ggml_quants.h) while the file is written:
// batches of about 8 MiB of floats, filled and encoded in parallel, written in order. What `lowbit synth` and
// `lowbit convert` stream; memory use stays at one batch whatever the tensor size.
#pragma once
#include <cstdint>
#include <functional>

#include "lowbit/gguf.h"
#include "lowbit/gguf_writer.h"
#include "lowbit/thread_pool.h"

namespace lowbit {

// fill(r0, n, out): rows [r0, r0 + n) of `row` floats each into out (called concurrently for disjoint rows).
using RowFill = std::function<void(uint64_t r0, size_t n, float* out)>;

// `pool` must outlive the GgufWriter's write().
GgufTensorSource encoded_rows_source(ThreadPool& pool, GgmlType type, uint64_t row, uint64_t rows, RowFill fill);

}  // namespace lowbit
