#include <fmt/format.h>

#include <cstring>

#include "kernels/ops.h"
#include "lowbit/model.h"

namespace lowbit {

uint64_t Weight::bytes() const {
  if (is_packed) return packed.desc.total_bytes();
  return static_cast<uint64_t>(rows) * cols * (dtype == WeightDtype::F32 ? 4 : 2);
}

void Weight::row_to_f32(size_t r, float* out) const {
  if (is_packed) {
    dequantize_packed_row(packed, r, out);
    return;
  }
  const size_t esize = dtype == WeightDtype::F32 ? 4 : 2;
  const uint8_t* src = dense + r * cols * esize;
  const auto* h = reinterpret_cast<const uint16_t*>(src);
  switch (dtype) {
    case WeightDtype::F32: std::memcpy(out, src, cols * 4); break;
    case WeightDtype::F16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::f16_to_f32(h[i]);
      break;
    case WeightDtype::BF16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::bf16_to_f32(h[i]);
      break;
  }
}

std::string Weight::format_name() const {
  if (!is_packed) return weight_dtype_name(dtype);
  const PackedDesc& d = packed.desc;
  std::string group = d.group_size == d.cols ? "ch" : fmt::format("g{}", d.group_size);
  return fmt::format("q{}_{}{}{}", d.bits, group, d.has_zeros ? "_z" : "",
                     d.act == ActivationMode::DynamicInt8 ? "_a8" : "");
}

}  // namespace lowbit
