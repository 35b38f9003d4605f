#include "model/weight_builder.h"

#include <algorithm>
#include <cstring>

#include "io/dequantize.h"
#include "kernels/ops.h"
#include "lowbit/error.h"
#include "quant/rtn.h"

namespace lowbit {

namespace {

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

std::string part_names(const std::vector<const GgufTensor*>& parts) {
  std::string s;
  for (auto* p : parts) s += (s.empty() ? "" : "+") + p->name;
  return s;
}

size_t total_rows(const std::vector<const GgufTensor*>& parts) {
  size_t rows = 0;
  for (auto* p : parts) rows += p->n_elements / p->ne[0];
  return rows;
}

// Allocates one buffer holding codes | scales | mins (each 64-byte aligned) and points `w.packed` into it.
void allocate_packed(Weight& w, const PackedDesc& d) {
  const size_t codes = align64(d.code_bytes()), scales = align64(d.scale_count() * 2);
  const size_t mins = d.has_zeros ? align64(d.scale_count() * 2) : 0;
  w.storage.resize(codes + scales + mins);
  w.is_packed = true;
  w.rows = d.rows;
  w.cols = d.cols;
  w.packed.desc = d;
  w.packed.codes = w.storage.data();
  w.packed.scales = reinterpret_cast<const uint16_t*>(w.storage.data() + codes);
  w.packed.mins = d.has_zeros ? reinterpret_cast<const uint16_t*>(w.storage.data() + codes + scales) : nullptr;
}

// Mutable views of a packed weight's blobs at a given row.
struct PackedRows {
  uint8_t* codes;
  uint16_t* scales;
  uint16_t* mins;
};
PackedRows rows_at(Weight& w, size_t row) {
  const PackedDesc& d = w.packed.desc;
  return {const_cast<uint8_t*>(w.packed.codes) + row * d.row_code_bytes(),
          const_cast<uint16_t*>(w.packed.scales) + row * d.n_groups(),
          d.has_zeros ? const_cast<uint16_t*>(w.packed.mins) + row * d.n_groups() : nullptr};
}

}  // namespace

WeightBuilder::WeightBuilder(ThreadPool& pool, const std::optional<Recipe>& recipe, bool tied_output, bool row_tiles)
    : pool_(pool), recipe_(recipe), tied_(tied_output), row_tiles_(row_tiles) {}

std::optional<QuantSpec> WeightBuilder::spec_for(WeightRole role) const {
  if (!recipe_) return std::nullopt;
  switch (role) {
    case WeightRole::Linear: return recipe_->linear;
    case WeightRole::Embedding: return recipe_->embedding;
    case WeightRole::Output: return recipe_->output_spec(tied_);
  }
  return std::nullopt;
}

bool WeightBuilder::output_differs_from_embedding() const {
  return recipe_ && spec_for(WeightRole::Output) != spec_for(WeightRole::Embedding);
}

Weight WeightBuilder::make(const std::vector<const GgufTensor*>& parts, WeightRole role) const {
  Weight w = make_in_row_layout(parts, role);
  if (row_tiles_) w.use_row_tiles(pool_);
  return w;
}

Weight WeightBuilder::make_in_row_layout(const std::vector<const GgufTensor*>& parts, WeightRole role) const {
  for (auto* p : parts)
    if (p->ne[0] != parts[0]->ne[0]) fail("tensors {}: row lengths differ", part_names(parts));
  std::optional<QuantSpec> spec = spec_for(role);
  if (spec) {
    // Embedding tables are looked up, not multiplied, but a tied one is also the output projection: give it
    // int8 activations when the linear layers use them.
    const bool a8 = spec->dynamic_activations ||
                    (role != WeightRole::Linear && recipe_->linear && recipe_->linear->dynamic_activations);
    return make_quantized(parts, *spec, a8);
  }
  if (!recipe_) {
    bool native = true;
    for (auto* p : parts)
      native &= p->type == parts[0]->type &&
                (p->type == GgmlType::Q4_0 || p->type == GgmlType::Q4_1 || p->type == GgmlType::Q8_0);
    if (native) return make_native(parts);
  }
  return make_dense(parts, recipe_ ? recipe_->precision : WeightDtype::F32);
}

Weight WeightBuilder::make_dense(const std::vector<const GgufTensor*>& parts, WeightDtype dtype) const {
  Weight w;
  w.dtype = dtype;
  w.cols = parts[0]->ne[0];
  w.rows = total_rows(parts);
  const size_t esize = dtype == WeightDtype::F32 ? 4 : 2;
  w.storage.resize(w.rows * w.cols * esize);
  w.dense = w.storage.data();
  size_t row_base = 0;
  for (auto* p : parts) {
    const size_t rows = p->n_elements / w.cols;
    pool_.parallel_for(rows, 64, [&](size_t r0, size_t r1) {
      std::vector<float> buf((r1 - r0) * w.cols);
      dequantize_rows(*p, r0, r1 - r0, buf.data());
      uint8_t* dst = w.storage.data() + (row_base + r0) * w.cols * esize;
      switch (dtype) {
        case WeightDtype::F32: std::memcpy(dst, buf.data(), buf.size() * 4); break;
        case WeightDtype::F16: kernels::f32_to_f16(buf.data(), reinterpret_cast<uint16_t*>(dst), buf.size()); break;
        case WeightDtype::BF16: kernels::f32_to_bf16(buf.data(), reinterpret_cast<uint16_t*>(dst), buf.size()); break;
      }
    });
    row_base += rows;
  }
  return w;
}

size_t WeightBuilder::group_for_row(const QuantSpec& spec, size_t cols, const std::string& tensor) const {
  if (spec.group_size == 0) return cols;
  const size_t want = static_cast<size_t>(spec.group_size);
  if (cols % want == 0) return want;
  // torchao pads such rows (or skips the layer); we keep every row exact and use the largest group <= G that
  // divides the row, preferring multiples of 32 (the code block the fast kernels step by).
  size_t best = 0;
  for (size_t g = std::min(want, cols); g >= 1 && best == 0; --g)
    if (cols % g == 0 && g % kPackBlock == 0) best = g;
  for (size_t g = std::min(want, cols); g >= 1 && best == 0; --g)
    if (cols % g == 0) best = g;
  const std::string key = fmt::format("{}/{}/{}", spec.scheme, want, cols);
  if (adjusted_groups_.insert(key).second)
    note("recipe: {} groupsize {} does not divide the row length {} (first: tensor {}); those rows use groupsize {}",
         spec.scheme, want, cols, tensor, best);
  return best;
}

Weight WeightBuilder::make_quantized(const std::vector<const GgufTensor*>& parts, const QuantSpec& spec,
                                     bool a8) const {
  PackedDesc d;
  d.bits = spec.bits;
  d.cols = parts[0]->ne[0];
  d.rows = total_rows(parts);
  d.group_size = group_for_row(spec, d.cols, part_names(parts));
  d.has_zeros = spec.has_zeros;
  d.act = a8 ? ActivationMode::DynamicInt8 : ActivationMode::WeightOnly;
  d.validate(part_names(parts));
  // 4-8 bits: plain min/max rounding, byte for byte ggml's Q4_0/Q4_1/Q8_0 reference quantizers on those grids.
  // 1-3 bits: min/max wastes too many of the few levels (e.g. 2-bit asymmetric has no level near 0), so a
  // least-squares scale search picks each group's grid, as llama.cpp's k-quants do.
  RtnOptions opt;
  opt.search = d.bits <= 3;
  Weight w;
  allocate_packed(w, d);
  size_t row_base = 0;
  for (auto* p : parts) {
    const size_t rows = p->n_elements / d.cols;
    pool_.parallel_for(rows, 16, [&](size_t r0, size_t r1) {
      std::vector<float> buf((r1 - r0) * d.cols);
      dequantize_rows(*p, r0, r1 - r0, buf.data());
      PackedDesc chunk = d;
      chunk.rows = r1 - r0;
      PackedRows out = rows_at(w, row_base + r0);
      quantize_rtn(buf.data(), chunk, out.codes, out.scales, out.mins, opt);
    });
    row_base += rows;
  }
  return w;
}

Weight WeightBuilder::make_native(const std::vector<const GgufTensor*>& parts) const {
  const size_t cols = parts[0]->ne[0];
  Weight w;
  size_t row_base = 0;
  for (auto* p : parts) {
    const size_t rows = p->n_elements / cols;
    // As llama.cpp computes these types: int8 activations per block of 32.
    PackedStorage part = pack_from_ggml(p->type, p->data, rows, cols, ActivationMode::DynamicInt8);
    if (row_base == 0) {
      PackedDesc d = part.desc;
      d.rows = total_rows(parts);
      allocate_packed(w, d);
    }
    PackedRows out = rows_at(w, row_base);
    std::memcpy(out.codes, part.codes.data(), part.codes.size());
    std::memcpy(out.scales, part.scales.data(), part.scales.size() * 2);
    if (part.desc.has_zeros) std::memcpy(out.mins, part.mins.data(), part.mins.size() * 2);
    row_base += rows;
  }
  return w;
}

}  // namespace lowbit
