// Packed groupwise-quantized weight matrices: one format for every bit width 1..8, described by data
// (bits, group size, zeros, activation mode), not by a type per width.
//
// A weight matrix is rows × cols (out × in). Each weight is an unsigned b-bit code q in [0, 2^b − 1] and
//     w = d_g · q + m_g
// where g = col / group_size is the weight's group along its row, d_g its scale and m_g its offset ("min").
// Symmetric formats (has_zeros = false) store no m: m_g = −d_g · 2^(b−1), i.e. w = d_g · (q − 2^(b−1)).
// d and m are IEEE half floats, stored per (row, group) in their own blobs: scales[row * n_groups + g].
//
// Codes are stored in blocks of 32 consecutive weights of a row (a row's last block is zero-padded when cols
// is not a multiple of 32); a row is n_blocks = ceil(cols / 32) blocks, rows are contiguous. Block layout:
//   b = 8:  32 bytes, byte j = q_j.
//   b = 4:  16 bytes, byte j = q_j | q_{j+16} << 4   (ggml's Q4_0/Q4_1 order, so those map in unchanged).
//   other:  b bit-planes, each a little-endian uint32: bit j of plane p is bit p of q_j (4·b bytes).
//           Unpacking costs one masked OR per plane, so the cost scales with b (1, 2, 3, 5, 6, 7 bits).
//
// Activation modes:
//   WeightOnly: y = Σ_k w_k · x_k in fp32 (torchchat's linear:int4 / linear:int8).
//   DynamicInt8 (a8): each token's activations are quantized at run time to int8 in blocks of 32 with one fp32
//     scale per block, s = max|x| / 127, xq = round(x / s) (the same granularity as llama.cpp's Q8_0
//     activations; finer than torchao's per-token scale). Exactly (kernels/matmul_q/matmul_q.h,
//     quantize_activations): amax over the block's real values (a short last block is zero-padded),
//     s = amax / 127.0f, xq = round-half-to-even(x * (127.0f / amax)) (0 when amax = 0). Then per block b of
//     group g:
//         y += d_g · s_b · Σ_j q_j · xq_j  +  m_g · s_b · Σ_j xq_j
//     which integer dot-product instructions (VNNI vpdpbusd u8×s8, ARM sdot) compute directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

enum class ActivationMode : uint8_t { WeightOnly = 0, DynamicInt8 = 1 };

constexpr size_t kPackBlock = 32;  // weights per code block

struct PackedDesc {
  int bits = 4;              // 1..8
  size_t group_size = 32;    // divides cols (cols itself for channelwise)
  bool has_zeros = true;
  ActivationMode act = ActivationMode::WeightOnly;
  size_t rows = 0, cols = 0;

  size_t n_blocks() const { return (cols + kPackBlock - 1) / kPackBlock; }
  size_t block_bytes() const { return bits == 8 ? 32 : bits == 4 ? 16 : 4 * static_cast<size_t>(bits); }
  size_t row_code_bytes() const { return n_blocks() * block_bytes(); }
  size_t n_groups() const { return cols / group_size; }
  size_t code_bytes() const { return rows * row_code_bytes(); }
  size_t scale_count() const { return rows * n_groups(); }  // halves in scales (and in mins if has_zeros)
  // Bytes of codes + scales + mins.
  size_t total_bytes() const { return code_bytes() + scale_count() * 2 * (has_zeros ? 2 : 1); }
  void validate(const std::string& what) const;  // throws lowbit::Error naming `what`
};

// A packed matrix: a description plus three blobs (codes, scales, mins — mins null when !has_zeros). The
// blobs are not owned: they point into a bundle mapping or a buffer owned by the holder.
struct PackedMatrix {
  PackedDesc desc;
  const uint8_t* codes = nullptr;
  const uint16_t* scales = nullptr;
  const uint16_t* mins = nullptr;
  // Optional second layout built at load time for the 16-row kernels (quant/row_tiles.h). When set, codes,
  // scales and mins may be null: the kernels and dequantize_packed_row then read the tiles.
  const uint8_t* tiles = nullptr;

  const uint8_t* row_codes(size_t row) const { return codes + row * desc.row_code_bytes(); }
};

// A packed matrix that owns its blobs (quantizer output, tests, benches). Zero-initialised on construction.
struct PackedStorage {
  PackedDesc desc;
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales, mins;  // mins empty when !has_zeros

  PackedStorage() = default;
  explicit PackedStorage(const PackedDesc& d);  // validates d ("packed matrix")
  PackedMatrix view() const {
    return {desc, codes.data(), scales.data(), desc.has_zeros ? mins.data() : nullptr};
  }
};

// Code access in the layout above. These are plain scalar helpers (tests, references, quantizers); the kernels
// decode whole blocks themselves. `row_codes` points at the start of a row's code blocks; col < desc.cols
// (set_code may also write the zero padding of the last block, col < n_blocks * 32).
uint32_t get_code(const PackedDesc& d, const uint8_t* row_codes, size_t col);
void set_code(const PackedDesc& d, uint8_t* row_codes, size_t col, uint32_t q);  // q < 2^bits
// One row's codes as bytes (n_blocks * 32 values, the padding included) / from bytes (q[0 .. cols), the
// padding is written as zeros).
void unpack_row_codes(const PackedDesc& d, const uint8_t* row_codes, uint8_t* q);
void pack_row_codes(const PackedDesc& d, const uint8_t* q, uint8_t* row_codes);

// The weight values of one row, out[0 .. cols): w = d_g * q + m_g, computed in fp32 as
//   has_zeros: d * float(q) + m;     symmetric: d * float(int(q) - 2^(bits-1))
// (the same expressions as ggml's dequantize_row_q4_1 / q4_0 / q8_0, so repacked ggml blocks dequantize to
// identical floats).
void dequantize_packed_row(const PackedMatrix& m, size_t row, float* out);

}  // namespace lowbit
