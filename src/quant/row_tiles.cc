// Building and reading the row-tile layout (quant/row_tiles.h). Scalar: it runs once per matrix at load time.
#include "quant/row_tiles.h"

#include <cstring>

#include "kernels/half.h"

namespace lowbit {

namespace {

// Where code (r, col) of a tile lives: byte offset within the tile's codes, and the bit shift and width of its
// bits there (3-bit codes have two parts: the low 2 bits as in the 2-bit layout, the high bit in chunk 2).
struct CodeBits {
  size_t off;
  int shift, width;
};
void code_bits(const PackedDesc& d, size_t r, size_t col, CodeBits* lo, CodeBits* hi) {
  const size_t b = col / kPackBlock, j = col % kPackBlock;
  const size_t block = b * d.block_bytes() * kTileRows;
  const size_t e = j % 4;
  switch (d.bits) {
    case 8: *lo = {block + (j / 4) * 64 + 4 * r + e, 0, 8}; break;
    case 4: *lo = {block + ((j % 16) / 4) * 64 + 4 * r + e, 4 * static_cast<int>(j / 16), 4}; break;
    default:  // 2, 3
      *lo = {block + (j / 16) * 64 + 4 * r + e, 2 * static_cast<int>((j % 16) / 4), 2};
      if (d.bits == 3) *hi = {block + 128 + 4 * r + e, static_cast<int>(j / 4), 1};
      break;
  }
}

}  // namespace

bool row_tiles_fit(const PackedDesc& d) {
  return d.act == ActivationMode::DynamicInt8 && (d.bits == 2 || d.bits == 3 || d.bits == 4 || d.bits == 8) &&
         d.group_size % kPackBlock == 0 &&
         d.rows % kTileRows == 0;
}

size_t row_tile_code_bytes(const PackedDesc& d) { return kTileRows * d.row_code_bytes(); }

size_t row_tile_bytes(const PackedDesc& d) {
  return row_tile_code_bytes(d) + d.n_groups() * kTileRows * 2 * (d.has_zeros ? 2 : 1);
}

size_t row_tiles_bytes(const PackedDesc& d) { return d.rows / kTileRows * row_tile_bytes(d); }

void build_row_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out) {
  const PackedDesc& d = m.desc;
  const size_t ng = d.n_groups(), tb = row_tile_bytes(d), cb = row_tile_code_bytes(d);
  for (size_t t = t0; t < t1; ++t) {
    uint8_t* tile = out + t * tb;
    std::memset(tile, 0, cb);
    for (size_t r = 0; r < kTileRows; ++r) {
      const size_t row = t * kTileRows + r;
      const uint8_t* src = m.row_codes(row);
      for (size_t col = 0; col < d.cols; ++col) {
        CodeBits lo{}, hi{};
        code_bits(d, r, col, &lo, &hi);
        const uint32_t q = get_code(d, src, col);
        tile[lo.off] = static_cast<uint8_t>(tile[lo.off] | ((q & ((1u << lo.width) - 1)) << lo.shift));
        if (d.bits == 3) tile[hi.off] = static_cast<uint8_t>(tile[hi.off] | ((q >> 2) << hi.shift));
      }
    }
    auto* dd = reinterpret_cast<uint16_t*>(tile + cb);
    auto* mm = dd + ng * kTileRows;
    for (size_t g = 0; g < ng; ++g)
      for (size_t r = 0; r < kTileRows; ++r) {
        const size_t row = t * kTileRows + r;
        dd[g * kTileRows + r] = m.scales[row * ng + g];
        if (d.has_zeros) mm[g * kTileRows + r] = m.mins[row * ng + g];
      }
  }
}

void dequantize_tiled_row(const PackedDesc& d, const uint8_t* tiles, size_t row, float* out) {
  const size_t ng = d.n_groups(), r = row % kTileRows;
  const uint8_t* tile = tiles + row / kTileRows * row_tile_bytes(d);
  uint16_t dh, mh;
  const uint8_t* scales = tile + row_tile_code_bytes(d);
  const uint8_t* mins = scales + ng * kTileRows * 2;
  const int zero = 1 << (d.bits - 1);
  for (size_t g = 0; g < ng; ++g) {
    std::memcpy(&dh, scales + 2 * (g * kTileRows + r), 2);
    const float scale = kernels::half_to_f32(dh);
    float mn = 0.0f;
    if (d.has_zeros) {
      std::memcpy(&mh, mins + 2 * (g * kTileRows + r), 2);
      mn = kernels::half_to_f32(mh);
    }
    for (size_t col = g * d.group_size; col < (g + 1) * d.group_size; ++col) {
      CodeBits lo{}, hi{};
      code_bits(d, r, col, &lo, &hi);
      int q = (tile[lo.off] >> lo.shift) & ((1 << lo.width) - 1);
      if (d.bits == 3) q |= ((tile[hi.off] >> hi.shift) & 1) << 2;
      // The same expressions as dequantize_packed_row.
      out[col] = d.has_zeros ? scale * static_cast<float>(q) + mn : scale * static_cast<float>(q - zero);
    }
  }
}

}  // namespace lowbit
