// T-MAC-style table-lookup decode for int8-activation (a8wXdq) matrices of 1, 2 or 3 bits: an experiment beside
// the row-tile unpack-and-dot kernel (quant/row_tiles.h). Not used by matmul_q: tmac_lut_bench.cc compares the
// two, and unpack-and-dot is kept for 2 and 3 bits. Measured on this repo's Zen 4 VM (5632 × 2048, 1 token, g32,
// medians of 3 interleaved runs, row tiles with inline scales): LUT / tiles warm (L3) 0.96–0.99 at 2 bits and
// 1.07 at 3 bits; cold (DRAM) 0.60–0.70 at 2 bits and 0.66–0.83 at 3 bits (the LUT tiles keep their scales at
// the tile's end, a second stream; tiles had that too when the LUT kernel was written, and then it won cold by
// reading 4 tiles per call). Per 16 rows × 32 columns both need ~25 vector ALU ops at 2 bits (LUT: 8 vpermb,
// 4 vpternlogd, 2 vpsrlw, 4 vpaddb, 4 vpdpbusd, 3 to convert; row tiles: 8 vpandd, 6 vpsrlw, 8 vpdpbusd, 3)
// and 36 vs 40 at 3 bits, so with one vpdpbusd per cycle the lookups save nothing at 2 bits and ~7% of the
// arithmetic at 3, less than decode loses to memory. 1 bit (4 vpermb + 4 vpdpbusd per 16 × 32) is where
// lookups should pay; lowbit has no other 1-bit decode kernel to compare with.
//
// Idea (T-MAC, EuroSys 2025): Σ_k q_k·x_k = Σ_p 2^p · Σ_k bit_p(q_k)·x_k, and for 4 columns the inner sum takes
// one of 16 values (the sums of subsets of those 4 activations), so a precomputed 16-entry table per 4 columns
// and a 4-bit index per (row, plane, 4 columns) replace the multiplications. Cost per weight scales with bits.
//
// Layout ("LUT tiles"). Rows are taken 16 at a time (tile t = rows 16t .. 16t+15); tiles are contiguous, each
// lut_tile_bytes() long:
//   codes: for each block b (32 columns), bits × 64-byte chunks; chunk p (plane p) byte 4r + e (r = row of the
//          tile, e = 0..3):
//            low nibble  bit i = bit p of q[r][32b + 4e + i]        ("quad" 0: columns 32b .. 32b+15)
//            high nibble bit i = bit p of q[r][32b + 16 + 4e + i]   ("quad" 1: columns 32b+16 .. 32b+31)
//          so a chunk's dword lane r holds row r, and its 4 bytes the 4 column groups of a quad: one vpermb
//          with the index (nibble | e << 4) looks 64 (row, column group) entries up in a 64-byte table holding
//          the quad's four 16-entry tables, and a vpdpbusd against ones sums the 4 groups into row r's int32.
//   d:     n_groups × 16 halves, d[g·16 + r]
//   m:     n_groups × 16 halves when has_zeros
// The same number of bytes as the row layout (and as the row tiles).
//
// Tables (per token, built once per call by each thread; exact, no rounding): xq = 16·xh + xl with
// xl = xq & 15 in [0, 15] and xh = xq >> 4 in [-8, 7]. For quad c of block b, TL[16e + n] = Σ_{i: bit i of n}
// xl[32b + 16c + 4e + i] in [0, 60] and TH likewise from xh in [-32, 28]. Stored per (b, c) as four 64-byte
// tables [TL, TH, 2·TL, 2·TH] (1 bit: two), 32 KiB per 2048 columns. Planes 0 and 1 are added in bytes before
// widening (TL + 2TL' <= 180 fits u8, TH + 2TH' in [-96, 84] fits s8); plane 2 is looked up in TL, TH and
// widened on its own with the multipliers 4 and 64. The row's int32 sum is vpdpbusd(lo, 1) + vpdpbusd(16, hi)
// (+ vpdpbusd(lo2, 4) + vpdpbusd(64, hi2)) = Σ (xl + 16·xh)·q = Σ q·xq exactly, so results differ from
// ref::matmul_q only in the float combination of block dots (as the row-tile kernel's do).
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/thread_pool.h"
#include "quant/packed.h"

namespace lowbit::kernels {

constexpr size_t kLutTileRows = 16;

// act = DynamicInt8, bits 1..3, group_size % 32 == 0, rows % 16 == 0.
bool lut_tiles_fit(const PackedDesc& d);
size_t lut_tile_code_bytes(const PackedDesc& d);  // codes of one tile (the d, m halves follow)
size_t lut_tile_bytes(const PackedDesc& d);
size_t lut_tiles_bytes(const PackedDesc& d);  // all tiles
// Writes tiles [t0, t1) of m (row layout) to out + t0 · lut_tile_bytes. m.desc must fit. Scalar (load time).
void build_lut_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out);

// Whether this CPU can run the LUT kernel (AVX-512 F/BW + VBMI + VNNI, checked at run time).
bool lut_kernel_available();

// y = W·x (n_tokens × rows, as matmul_q) from LUT tiles of a matrix described by d (lut_tiles_fit). Tokens are
// done one at a time (it is a decode kernel); the rows (tiles) are split between the pool's threads like the
// row-tile decode (kernel_tuning().dot_grain rows per task at least). Throws if !lut_kernel_available().
void matmul_q_lut(ThreadPool& pool, const PackedDesc& d, const uint8_t* tiles, const float* x, size_t n_tokens,
                  float* y);

}  // namespace lowbit::kernels
