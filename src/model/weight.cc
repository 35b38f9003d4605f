#include <fmt/format.h>

#include <sys/mman.h>
#include <unistd.h>

#include "kernels/matmul_q/matmul_q.h"
#include "kernels/ops.h"
#include "lowbit/model.h"
#include "quant/row_tiles.h"

namespace lowbit {

namespace {

// Returns the whole pages inside [p, p + n) of a read-only file mapping to the page cache (they fault back in
// from the file if touched again).
void release_mapped_pages(const void* p, size_t n) {
  if (!p || n == 0) return;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

// The dense half of Weight::use_row_tiles.
void use_dense_tiles(Weight& w, ThreadPool& pool) {
  if (w.dense_tiled || w.rows < kernels::kDenseTileRows || !kernels::matmul_uses_dense_tiles()) return;
  const size_t es = w.dtype == WeightDtype::F32 ? 4 : 2;
  AlignedBuffer<uint8_t> t(w.bytes());
  pool.parallel_for(kernels::dense_groups(w.rows), 4, [&](size_t g0, size_t g1) {
    kernels::dense_rows_to_tiles(es, w.dense, w.rows, w.cols, t.data(), g0, g1);
  });
  if (w.storage.size() > 0) {
    w.storage = std::move(t);  // the row layout was ours
    w.dense = w.storage.data();
  } else {  // it lies in a mapped bundle
    release_mapped_pages(w.dense, w.bytes());
    w.tiles = std::move(t);
    w.dense = w.tiles.data();
  }
  w.dense_tiled = true;
}

}  // namespace

void Weight::use_row_tiles(ThreadPool& pool) {
  if (!is_packed) return use_dense_tiles(*this, pool);
  if (packed.tiles || !row_tiles_fit(packed.desc) || !kernels::matmul_q_uses_row_tiles()) return;
  const PackedDesc& d = packed.desc;
  tiles.resize(row_tiles_bytes(d));
  pool.parallel_for(d.rows / kTileRows, 8, [&](size_t t0, size_t t1) { build_row_tiles(packed, t0, t1, tiles.data()); });
  packed.tiles = tiles.data();
  if (storage.size() > 0) {
    storage = AlignedBuffer<uint8_t>();  // the row layout was ours
  } else {                               // it lies in a mapped bundle
    release_mapped_pages(packed.codes, d.code_bytes());
    release_mapped_pages(packed.scales, d.scale_count() * 2);
    if (d.has_zeros) release_mapped_pages(packed.mins, d.scale_count() * 2);
  }
  packed.codes = nullptr;
  packed.scales = nullptr;
  packed.mins = nullptr;
}

bool Weight::prefill_in_bf16() const {
  return !is_packed && kernels::matmul_bf16_dot_available(dense_layout(), dense_type());  // (f32: never)
}

kernels::WeightType Weight::dense_type() const {
  switch (dtype) {
    case WeightDtype::F16: return kernels::WeightType::F16;
    case WeightDtype::BF16: return kernels::WeightType::BF16;
    case WeightDtype::F32: break;
  }
  return kernels::WeightType::F32;
}

kernels::DenseLayout Weight::dense_layout() const {
  return dense_tiled ? kernels::DenseLayout::Tiles : kernels::DenseLayout::Rows;
}

uint64_t Weight::bytes() const {
  if (is_packed) return packed.desc.total_bytes();
  return static_cast<uint64_t>(rows) * cols * (dtype == WeightDtype::F32 ? 4 : 2);
}

void Weight::row_to_f32(size_t r, float* out) const {
  if (is_packed) {
    dequantize_packed_row(packed, r, out);
    return;
  }
  // Element i of the row sits `step` values apart: 1 in the row layout, 32 inside a tile group.
  const kernels::DenseLayout layout = dense_layout();
  const size_t at = kernels::dense_index(layout, rows, cols, r, 0);
  const size_t step = cols > 1 ? kernels::dense_index(layout, rows, cols, r, 1) - at : 1;
  const auto* f = reinterpret_cast<const float*>(dense) + at;
  const auto* h = reinterpret_cast<const uint16_t*>(dense) + at;
  switch (dtype) {
    case WeightDtype::F32:
      for (size_t i = 0; i < cols; ++i) out[i] = f[i * step];
      break;
    case WeightDtype::F16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::f16_to_f32(h[i * step]);
      break;
    case WeightDtype::BF16:
      for (size_t i = 0; i < cols; ++i) out[i] = kernels::bf16_to_f32(h[i * step]);
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
