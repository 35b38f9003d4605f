// lowbit convert --to gguf: any model lowbit reads (GGUF of any supported type, or a .lbt bundle) written as a
// GGUF of one weight type, which llama.cpp and gguf-py read. Rows are dequantized to fp32 and re-encoded with
// ggml's reference quantizers (io/ggml_quants.h), streamed tensor by tensor.
#pragma once
#include <string>

#include "lowbit/gguf.h"
#include "lowbit/thread_pool.h"

namespace lowbit {

// `type`: F32, F16, BF16, Q8_0 or Q4_0 for the 2-D weights; 1-D tensors (norms) and rows whose length is not a
// multiple of 32 (quantized types) are written as F32, as llama-quantize does. A bundle's stacked q|k|v and
// gate|up matrices are split back into llama.cpp's tensors. Returns the file size in bytes.
uint64_t convert_to_gguf(const std::string& in, const std::string& out, GgmlType type, ThreadPool& pool);

}  // namespace lowbit
