// Round-to-nearest groupwise quantization into the packed format (quant/packed.h), and lossless repacking of
// ggml's Q4_0 / Q4_1 / Q8_0 blocks into it.
//
// Asymmetric (has_zeros), like ggml's Q4_1 generalised to b bits: per group min and max (plain, 0 not forced
// into the range), d = (max - min) / (2^b - 1), m = min, both stored as f16; the codes are computed against the
// f16-ROUNDED d and m, q = clamp(round((w - m) / d), 0, 2^b - 1), so the stored grid is the one the codes were
// chosen on (re-quantizing weights that already lie on an f16 grid, e.g. dequantized Q4_1, is then nearly
// exact). |w - ŵ| <= d/2 for every weight up to the f16 rounding of d and m.
//
// Symmetric, like ggml's Q4_0 generalised to b bits: mx = the value of largest |w| (sign kept),
// d = mx / -2^(b-1), stored f16, q = clamp(round(w / d) + 2^(b-1), 0, 2^b - 1) with the rounded d. mx itself
// maps to code 0 (the full range on its side); values of the other sign reach only +(2^(b-1) - 1)·|d|, so they
// may clip by up to |d|. An all-zero group has d = 0 and every code 2^(b-1) (w = 0).
// With b = 1 this degenerates (consistently) to codes {0, 1} -> {mx, 0}: weights of mx's sign above |mx|/2
// become mx, everything else 0. It is accepted because it follows the one formula; use has_zeros for 1 bit.
//
// RtnOptions::search additionally tries a few scales around the min/max one per group (as llama.cpp's
// make_qx_quants / make_qkx2_quants do), refitting d (and m) by least squares to the chosen codes, and keeps
// the candidate with the lowest squared error measured on the f16-rounded grid. Never worse than plain RTN.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/gguf.h"
#include "lowbit/thread_pool.h"
#include "quant/packed.h"

namespace lowbit {

struct RtnOptions {
  bool search = false;
};

// W is d.rows × d.cols, row-major. codes: d.code_bytes(); scales: d.scale_count(); mins: d.scale_count() when
// d.has_zeros (ignored otherwise). Throws lowbit::Error if d is invalid or a scale or min overflows f16.
void quantize_rtn(const float* W, const PackedDesc& d, uint8_t* codes, uint16_t* scales, uint16_t* mins,
                  const RtnOptions& opt = {});
// The same, rows split across the pool's threads (identical output).
void quantize_rtn(ThreadPool& pool, const float* W, const PackedDesc& d, uint8_t* codes, uint16_t* scales,
                  uint16_t* mins, const RtnOptions& opt = {});
PackedStorage quantize_rtn(ThreadPool& pool, const float* W, const PackedDesc& d, const RtnOptions& opt = {});

// Mean squared error between W (rows × cols) and the dequantized m.
double packed_mse(const float* W, const PackedMatrix& m);
// Mean squared error between two float arrays of n values.
double mse(const float* a, const float* b, size_t n);

// ggml blocks (rows × cols, cols a multiple of 32, rows contiguous as in GGUF) repacked without
// re-quantizing; dequantize_packed_row then equals ggml's dequantize_row_* bit for bit.
//   Q4_0 -> bits 4, group 32, symmetric: d copied, codes = the nibbles (same byte layout)
//   Q4_1 -> bits 4, group 32, has_zeros: d and m copied, codes = the nibbles
//   Q8_0 -> bits 8, group 32, symmetric: d copied, codes = int8 q + 128 (q XOR 0x80)
// Other types throw lowbit::Error naming the type. `act` only sets desc.act.
PackedStorage pack_from_ggml(GgmlType type, const uint8_t* src, size_t rows, size_t cols,
                             ActivationMode act = ActivationMode::WeightOnly);

}  // namespace lowbit
