// ggml's reference (round-to-nearest) quantizers and dequantizers for the block types lowbit reads and writes,
// plus the scalar fp16/bf16 conversions they use. These define the bytes lowbit writes into GGUF files (the tiny
// test models, `lowbit convert`, `lowbit synth`); they follow ggml-quants.c's quantize_row_*_ref bit for bit,
// so files we write match what llama.cpp's `llama-quantize` would produce from the same floats.
//
// Block layouts (ggml-common.h), 32 weights per block, little-endian:
//   Q8_0 = {f16 d; i8 q[32]}          34 bytes   value = d * q          d = amax / 127, q = round(x / d)
//   Q4_0 = {f16 d; u8 qs[16]}         18 bytes   value = d * (n - 8)    d = max / -8 (max: the value of largest |x|)
//   Q4_1 = {f16 d; f16 m; u8 qs[16]}  20 bytes   value = d * n + m      d = (max - min) / 15, m = min
// In the 4-bit types the low nibble of qs[j] is weight j and the high nibble weight j + 16.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/gguf.h"

namespace lowbit {

// IEEE half and bfloat16, round to nearest even (NaN stays NaN, overflow becomes infinity).
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);
float bf16_to_fp32(uint16_t h);

// k = number of floats, a multiple of 32 (throws lowbit::Error otherwise); y receives k/32 blocks.
void quantize_row_q8_0(const float* x, void* y, int64_t k);
void quantize_row_q4_0(const float* x, void* y, int64_t k);
void quantize_row_q4_1(const float* x, void* y, int64_t k);
void dequantize_row_q8_0(const void* x, float* y, int64_t k);
void dequantize_row_q4_0(const void* x, float* y, int64_t k);
void dequantize_row_q4_1(const void* x, float* y, int64_t k);

// Bytes taken by n values of `type` (n a multiple of the block size; throws otherwise or for unknown types).
uint64_t ggml_nbytes(GgmlType type, uint64_t n);

// Any of F32, F16, BF16, Q8_0, Q4_0, Q4_1 (throws lowbit::Error naming the type for others).
// `y` must hold ggml_nbytes(type, n) bytes.
void quantize_ggml(GgmlType type, const float* x, void* y, int64_t n);
void dequantize_ggml(GgmlType type, const void* x, float* y, int64_t n);
std::vector<uint8_t> quantize_ggml(GgmlType type, const float* x, int64_t n);

// llama.cpp's general.file_type ("mostly <type>") for the weight types lowbit's GGUF writers (synth, convert)
// produce: F32, F16, BF16, Q8_0, Q4_0; any other type is an Error listing those.
uint32_t llama_ftype_for_writing(GgmlType type);

}  // namespace lowbit
