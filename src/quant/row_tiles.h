// Row tiles: a second layout of a packed matrix (quant/packed.h), built once at load time for the int8-activation
// kernels that multiply 16 rows at a time (AVX-512 VNNI: one vpdpbusd advances 16 rows × 4 columns).
//
// Eligible matrices: act = DynamicInt8, bits 2, 3, 4, 5, 6 or 8, group_size % 32 == 0, rows % 16 == 0.
// Rows are taken 16 at a time ("tile" t = rows 16t .. 16t+15); tiles are contiguous, each tile_bytes() long.
// A tile is a sequence of units, each 2 groups (symmetric) or 1 group (with zeros; the last symmetric unit
// of an odd group count holds 1): the codes of the unit's groups, then one 64-byte line of their scales:
//
//   codes of a group: for each of its blocks b (32 columns), block_bytes · 16 bytes as 64-byte chunks; in
//          chunk k, the 4 bytes at 4r .. 4r+3 belong to row r of the tile:
//            8-bit: chunk k (0..7), byte e = q[32b + 4k + e]
//            4-bit: chunk k (0..3), byte e = q[32b + 4k + e] | q[32b + 16 + 4k + e] << 4
//            2-bit: chunk k (0..1), byte e = Σ_p q[32b + 16k + 4p + e] << 2p   (p = 0..3)
//            3-bit: chunks 0, 1 hold the low 2 bits of every code as in the 2-bit layout; chunk 2, byte e =
//                   Σ_p (q[32b + 4p + e] >> 2) << p   (p = 0..7)
//            5-bit: chunks 0-3 hold the low 4 bits as in the 4-bit layout; chunk 4, byte e =
//                   Σ_p (q[32b + 4p + e] >> 4) << p   (p = 0..7)
//            6-bit: chunks 0-3 hold the low 4 bits as in the 4-bit layout; chunks 4, 5 the high 2 bits as in
//                   the 2-bit layout: chunk 4 + k, byte e = Σ_p (q[32b + 16k + 4p + e] >> 4) << 2p
//          so a chunk is one zmm whose dword lane r is row r, and each field (nibble, bit pair, bit) of its
//          bytes holds 4 consecutive columns: one shift and one AND give a vector for vpdpbusd against a
//          broadcast dword of those 4 columns' activations (4-bit: ggml's pairing of j with j+16, as in the row
//          layout).
//   scales line: symmetric: d of the unit's first group (16 halves, d[r] for row r), then of its second (or
//          32 zero bytes); with zeros: the group's 16 d halves, then its 16 m halves.
//
// So a tile is read strictly front to back: the hardware prefetchers follow one stream. (With every scale at
// the tile's end, a second stream interleaved with the codes, one thread streamed 18–21 GB/s where a single
// forward stream gives 30 on this machine's Zen 4 cores, and software prefetching recovered only part.)
// The tiles hold the row layout's bytes, plus 32 bytes per tile when a symmetric matrix has an odd number of
// groups; the row-layout blobs may be dropped once they are built (dequantize_tiled_row reads a row back).
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/packed.h"

namespace lowbit {

constexpr size_t kTileRows = 16;

bool row_tiles_fit(const PackedDesc& d);

// Byte offsets within one tile (the layout above).
struct RowTileGeometry {
  size_t group_codes = 0;     // bytes of one group's codes (a multiple of 64)
  size_t unit_groups = 1;     // groups per unit: 2 symmetric, 1 with zeros
  size_t n_groups = 0;
  size_t block_bytes = 0;     // bytes of one block's codes (64 · bits)
  explicit RowTileGeometry(const PackedDesc& d);
  // Codes of group g; block b of the row starts at group_offset(b / blocks per group) + (b % that) · block_bytes.
  size_t group_offset(size_t g) const { return g * group_codes + g / unit_groups * 64; }
  // The 16 d halves of group g (with zeros, its 16 m halves follow at + 32).
  size_t scales_offset(size_t g) const {
    const size_t u0 = g - g % unit_groups, in_unit = n_groups - u0 < unit_groups ? n_groups - u0 : unit_groups;
    return group_offset(u0) + in_unit * group_codes + (g % unit_groups) * 32;
  }
  size_t tile_bytes() const { return n_groups * group_codes + (n_groups + unit_groups - 1) / unit_groups * 64; }
};

size_t row_tile_bytes(const PackedDesc& d);            // bytes of one tile
size_t row_tiles_bytes(const PackedDesc& d);           // all tiles (rows / 16 · row_tile_bytes)
// Writes tiles [t0, t1) of m (in the row layout) to out + t0 · row_tile_bytes. m.desc must fit.
void build_row_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out);
// One row's weights from the tiles (the same floats as dequantize_packed_row on the row layout).
void dequantize_tiled_row(const PackedDesc& d, const uint8_t* tiles, size_t row, float* out);

}  // namespace lowbit
