// Building and reading the row-tile layout (quant/row_tiles.h). Scalar: it runs once per matrix at load time.
#include "quant/row_tiles.h"

#include <cstring>

#include "kernels/half.h"

namespace lowbit {

namespace {

// Where code (r, col) of a tile lives: byte offset within the tile, and the bit shift and width of its bits
// there. 3-, 5- and 6-bit codes have two parts: the low 2 (3-bit) or 4 bits in the 2- or 4-bit layout, the
// rest (q >> lo.width) in the 1-bit (3, 5) or 2-bit (6) layout in the chunks after them; width 0 = no part.
struct CodeBits {
  size_t off;
  int shift, width;
};
void code_bits(const PackedDesc& d, const RowTileGeometry& geo, size_t r, size_t col, CodeBits* lo, CodeBits* hi) {
  const size_t b = col / kPackBlock, j = col % kPackBlock, gb = d.group_size / kPackBlock;
  const size_t block = geo.group_offset(b / gb) + (b % gb) * geo.block_bytes;
  const size_t e = j % 4;
  const auto two_bit = [&](size_t chunk0) {
    return CodeBits{block + chunk0 * 64 + (j / 16) * 64 + 4 * r + e, 2 * static_cast<int>((j % 16) / 4), 2};
  };
  const auto one_bit = [&](size_t chunk) { return CodeBits{block + chunk * 64 + 4 * r + e, static_cast<int>(j / 4), 1}; };
  *hi = {0, 0, 0};
  switch (d.bits) {
    case 8: *lo = {block + (j / 4) * 64 + 4 * r + e, 0, 8}; break;
    case 2: *lo = two_bit(0); break;
    case 3: *lo = two_bit(0), *hi = one_bit(2); break;
    default:  // 4, 5, 6
      *lo = {block + ((j % 16) / 4) * 64 + 4 * r + e, 4 * static_cast<int>(j / 16), 4};
      if (d.bits == 5) *hi = one_bit(4);
      if (d.bits == 6) *hi = two_bit(4);
      break;
  }
}

}  // namespace

RowTileGeometry::RowTileGeometry(const PackedDesc& d)
    : group_codes(d.group_size / kPackBlock * d.block_bytes() * kTileRows),
      unit_groups(d.has_zeros ? 1 : 2),
      n_groups(d.n_groups()),
      block_bytes(d.block_bytes() * kTileRows) {}

bool row_tiles_fit(const PackedDesc& d) {
  return d.act == ActivationMode::DynamicInt8 && d.bits >= 2 && d.bits != 7 &&
         d.group_size % kPackBlock == 0 && d.group_size > 0 && d.rows % kTileRows == 0;
}

size_t row_tile_bytes(const PackedDesc& d) { return RowTileGeometry(d).tile_bytes(); }

size_t row_tiles_bytes(const PackedDesc& d) { return d.rows / kTileRows * row_tile_bytes(d); }

void build_row_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out) {
  const PackedDesc& d = m.desc;
  const RowTileGeometry geo(d);
  const size_t ng = d.n_groups(), tb = geo.tile_bytes();
  for (size_t t = t0; t < t1; ++t) {
    uint8_t* tile = out + t * tb;
    std::memset(tile, 0, tb);
    for (size_t r = 0; r < kTileRows; ++r) {
      const size_t row = t * kTileRows + r;
      const uint8_t* src = m.row_codes(row);
      for (size_t col = 0; col < d.cols; ++col) {
        CodeBits lo{}, hi{};
        code_bits(d, geo, r, col, &lo, &hi);
        const uint32_t q = get_code(d, src, col);
        tile[lo.off] = static_cast<uint8_t>(tile[lo.off] | ((q & ((1u << lo.width) - 1)) << lo.shift));
        if (hi.width) tile[hi.off] = static_cast<uint8_t>(tile[hi.off] | ((q >> lo.width) << hi.shift));
      }
      for (size_t g = 0; g < ng; ++g) {
        uint8_t* sc = tile + geo.scales_offset(g);
        std::memcpy(sc + 2 * r, &m.scales[row * ng + g], 2);
        if (d.has_zeros) std::memcpy(sc + 32 + 2 * r, &m.mins[row * ng + g], 2);
      }
    }
  }
}

void dequantize_tiled_row(const PackedDesc& d, const uint8_t* tiles, size_t row, float* out) {
  const RowTileGeometry geo(d);
  const size_t ng = d.n_groups(), r = row % kTileRows;
  const uint8_t* tile = tiles + row / kTileRows * geo.tile_bytes();
  uint16_t dh, mh;
  const int zero = 1 << (d.bits - 1);
  for (size_t g = 0; g < ng; ++g) {
    const uint8_t* sc = tile + geo.scales_offset(g);
    std::memcpy(&dh, sc + 2 * r, 2);
    const float scale = kernels::half_to_f32(dh);
    float mn = 0.0f;
    if (d.has_zeros) {
      std::memcpy(&mh, sc + 32 + 2 * r, 2);
      mn = kernels::half_to_f32(mh);
    }
    for (size_t col = g * d.group_size; col < (g + 1) * d.group_size; ++col) {
      CodeBits lo{}, hi{};
      code_bits(d, geo, r, col, &lo, &hi);
      int q = (tile[lo.off] >> lo.shift) & ((1 << lo.width) - 1);
      if (hi.width) q |= ((tile[hi.off] >> hi.shift) & ((1 << hi.width) - 1)) << lo.width;
      // The same expressions as dequantize_packed_row.
      out[col] = d.has_zeros ? scale * static_cast<float>(q) + mn : scale * static_cast<float>(q - zero);
    }
  }
}

}  // namespace lowbit
