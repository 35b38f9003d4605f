// PackedDesc validation, scalar code access and row dequantization for the layout in packed.h.
#include "quant/packed.h"

#include <cstring>
#include <limits>

#include "kernels/half.h"
#include "lowbit/error.h"
#include "quant/row_tiles.h"

namespace lowbit {

void PackedDesc::validate(const std::string& what) const {
  if (bits < 1 || bits > 8) fail("{}: bit width {} is not in 1..8", what, bits);
  if (rows == 0 || cols == 0) fail("{}: shape {} x {} is empty", what, rows, cols);
  if (group_size == 0) fail("{}: group size is 0", what);
  if (cols % group_size != 0) fail("{}: group size {} does not divide the row length {}", what, group_size, cols);
  if (act != ActivationMode::WeightOnly && act != ActivationMode::DynamicInt8)
    fail("{}: activation mode {} is unknown", what, static_cast<int>(act));
  // Every blob size must be representable (a bundle header is not trusted).
  const size_t max = std::numeric_limits<size_t>::max() / 4;
  if (cols > max || rows > max / row_code_bytes() || rows > max / n_groups())
    fail("{}: shape {} x {} is too large", what, rows, cols);
}

PackedStorage::PackedStorage(const PackedDesc& d) : desc(d) {
  d.validate("packed matrix");
  codes.assign(d.code_bytes(), 0);
  scales.assign(d.scale_count(), 0);
  if (d.has_zeros) mins.assign(d.scale_count(), 0);
}

uint32_t get_code(const PackedDesc& d, const uint8_t* row_codes, size_t col) {
  const uint8_t* blk = row_codes + (col / kPackBlock) * d.block_bytes();
  const size_t j = col % kPackBlock;
  switch (d.bits) {
    case 8:
      return blk[j];
    case 4:
      return j < 16 ? blk[j] & 0x0Fu : blk[j - 16] >> 4;
    default: {
      uint32_t q = 0;
      for (int p = 0; p < d.bits; ++p) q |= static_cast<uint32_t>((blk[4 * p + j / 8] >> (j % 8)) & 1u) << p;
      return q;
    }
  }
}

void set_code(const PackedDesc& d, uint8_t* row_codes, size_t col, uint32_t q) {
  uint8_t* blk = row_codes + (col / kPackBlock) * d.block_bytes();
  const size_t j = col % kPackBlock;
  switch (d.bits) {
    case 8:
      blk[j] = static_cast<uint8_t>(q);
      return;
    case 4:
      if (j < 16)
        blk[j] = static_cast<uint8_t>((blk[j] & 0xF0u) | (q & 0x0Fu));
      else
        blk[j - 16] = static_cast<uint8_t>((blk[j - 16] & 0x0Fu) | ((q & 0x0Fu) << 4));
      return;
    default:
      // Plane p is a little-endian uint32: bit j of the plane is bit j % 8 of its byte j / 8.
      for (int p = 0; p < d.bits; ++p) {
        uint8_t& byte = blk[4 * p + j / 8];
        const uint8_t bit = static_cast<uint8_t>(1u << (j % 8));
        byte = static_cast<uint8_t>(((q >> p) & 1u) ? (byte | bit) : (byte & ~bit));
      }
      return;
  }
}

void unpack_row_codes(const PackedDesc& d, const uint8_t* row_codes, uint8_t* q) {
  const size_t n = d.n_blocks() * kPackBlock;
  for (size_t k = 0; k < n; ++k) q[k] = static_cast<uint8_t>(get_code(d, row_codes, k));
}

void pack_row_codes(const PackedDesc& d, const uint8_t* q, uint8_t* row_codes) {
  std::memset(row_codes, 0, d.row_code_bytes());
  for (size_t k = 0; k < d.cols; ++k) set_code(d, row_codes, k, q[k]);
}

void dequantize_packed_row(const PackedMatrix& m, size_t row, float* out) {
  const PackedDesc& d = m.desc;
  if (!m.codes && m.tiles) return dequantize_tiled_row(d, m.tiles, row, out);
  const uint8_t* codes = m.row_codes(row);
  const size_t ng = d.n_groups();
  const int zero = 1 << (d.bits - 1);
  for (size_t g = 0; g < ng; ++g) {
    const float scale = kernels::half_to_f32(m.scales[row * ng + g]);
    const size_t k0 = g * d.group_size, k1 = k0 + d.group_size;
    if (d.has_zeros) {
      const float mn = kernels::half_to_f32(m.mins[row * ng + g]);
      for (size_t k = k0; k < k1; ++k) out[k] = scale * static_cast<float>(get_code(d, codes, k)) + mn;
    } else {
      for (size_t k = k0; k < k1; ++k)
        out[k] = scale * static_cast<float>(static_cast<int>(get_code(d, codes, k)) - zero);
    }
  }
}

}  // namespace lowbit
