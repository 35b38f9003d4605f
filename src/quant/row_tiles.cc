// Building and reading the row-tile layout (quant/row_tiles.h). Scalar: it runs once per matrix at load time.
#include "quant/row_tiles.h"

#include <cstring>

#include "kernels/half.h"

namespace lowbit {

namespace {

size_t tile_code_bytes(const PackedDesc& d) { return kTileRows * d.row_code_bytes(); }

// Byte offset, within a tile's codes, of code (r, col); for 4-bit also whether it is the high nibble.
size_t tiled_code_offset(const PackedDesc& d, size_t r, size_t col, bool* high) {
  const size_t b = col / kPackBlock, j = col % kPackBlock;
  const size_t block = b * d.block_bytes() * kTileRows;
  if (d.bits == 8) return block + (j / 4) * 64 + 4 * r + j % 4;
  *high = j >= 16;
  const size_t jj = j % 16;
  return block + (jj / 4) * 64 + 4 * r + jj % 4;
}

}  // namespace

bool row_tiles_fit(const PackedDesc& d) {
  return d.act == ActivationMode::DynamicInt8 && (d.bits == 4 || d.bits == 8) && d.group_size % kPackBlock == 0 &&
         d.rows % kTileRows == 0;
}

size_t row_tile_bytes(const PackedDesc& d) {
  return tile_code_bytes(d) + d.n_groups() * kTileRows * 2 * (d.has_zeros ? 2 : 1);
}

size_t row_tiles_bytes(const PackedDesc& d) { return d.rows / kTileRows * row_tile_bytes(d); }

void build_row_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out) {
  const PackedDesc& d = m.desc;
  const size_t ng = d.n_groups(), tb = row_tile_bytes(d), cb = tile_code_bytes(d);
  for (size_t t = t0; t < t1; ++t) {
    uint8_t* tile = out + t * tb;
    std::memset(tile, 0, cb);
    for (size_t r = 0; r < kTileRows; ++r) {
      const size_t row = t * kTileRows + r;
      const uint8_t* src = m.row_codes(row);
      for (size_t col = 0; col < d.cols; ++col) {
        bool high = false;
        const size_t off = tiled_code_offset(d, r, col, &high);
        const uint32_t q = get_code(d, src, col);
        tile[off] = static_cast<uint8_t>(tile[off] | (high ? q << 4 : q));
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
  const uint8_t* scales = tile + tile_code_bytes(d);
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
      bool high = false;
      const uint8_t byte = tile[tiled_code_offset(d, r, col, &high)];
      const int q = d.bits == 8 ? byte : high ? byte >> 4 : byte & 0x0F;
      // The same expressions as dequantize_packed_row.
      out[col] = d.has_zeros ? scale * static_cast<float>(q) + mn : scale * static_cast<float>(q - zero);
    }
  }
}

}  // namespace lowbit
