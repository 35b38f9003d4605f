// Row tiles: a second layout of a packed matrix (quant/packed.h), built once at load time for the int8-activation
// kernels that multiply 16 rows at a time (AVX-512 VNNI: one vpdpbusd advances 16 rows × 4 columns).
//
// Eligible matrices: act = DynamicInt8, bits 2, 3, 4 or 8, group_size % 32 == 0, rows % 16 == 0.
// Rows are taken 16 at a time ("tile" t = rows 16t .. 16t+15); tiles are contiguous, each tile_bytes() long:
//
//   codes: for each block b (32 columns) in row order, block_bytes · 16 bytes as 64-byte chunks; in chunk k,
//          the 4 bytes at 4r .. 4r+3 belong to row r of the tile:
//            8-bit: chunk k (0..7), byte e = q[32b + 4k + e]
//            4-bit: chunk k (0..3), byte e = q[32b + 4k + e] | q[32b + 16 + 4k + e] << 4
//            2-bit: chunk k (0..1), byte e = Σ_p q[32b + 16k + 4p + e] << 2p   (p = 0..3)
//            3-bit: chunks 0, 1 hold the low 2 bits of every code as in the 2-bit layout; chunk 2, byte e =
//                   Σ_p (q[32b + 4p + e] >> 2) << p   (p = 0..7)
//          so a chunk is one zmm whose dword lane r is row r, and each field (nibble, bit pair, bit) of its
//          bytes holds 4 consecutive columns: one shift and one AND give a vector for vpdpbusd against a
//          broadcast dword of those 4 columns' activations (4-bit: ggml's pairing of j with j+16, as in the row
//          layout).
//   d:     n_groups × 16 halves, d[g·16 + r]
//   m:     n_groups × 16 halves when has_zeros
//
// A tile is one sequential stream of exactly the bytes the 16 rows take in the row layout, so the tiled copy
// is the same size; the row-layout blobs may be dropped once it is built (dequantize_tiled_row reads a row back).
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/packed.h"

namespace lowbit {

constexpr size_t kTileRows = 16;

bool row_tiles_fit(const PackedDesc& d);
size_t row_tile_bytes(const PackedDesc& d);            // bytes of one tile
size_t row_tile_code_bytes(const PackedDesc& d);       // its codes (the d, m halves follow)
size_t row_tiles_bytes(const PackedDesc& d);           // all tiles (rows / 16 · row_tile_bytes)
// Writes tiles [t0, t1) of m (in the row layout) to out + t0 · row_tile_bytes. m.desc must fit.
void build_row_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out);
// One row's weights from the tiles (the same floats as dequantize_packed_row on the row layout).
void dequantize_tiled_row(const PackedDesc& d, const uint8_t* tiles, size_t row, float* out);

}  // namespace lowbit
