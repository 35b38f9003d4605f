// See ggml_quants.h for the block layouts. The quantizers reproduce ggml's reference rounding exactly: Q8_0
// rounds half away from zero (roundf); Q4_0 and Q4_1 add 8.5 / 0.5 and truncate, then clamp to 15. The scale
// `d` is computed in fp32 and its fp16 rounding is what is stored, while the quants use 1/d of the fp32 value —
// the same (slightly inconsistent) order ggml uses, so our bytes equal theirs.
#include "io/ggml_quants.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "lowbit/error.h"

namespace lowbit {

// One implementation of the 16-bit conversions: the kernels' inline ones (kernels/half.h).
uint16_t fp32_to_fp16(float f) { return kernels::f32_to_half(f); }
float fp16_to_fp32(uint16_t h) { return kernels::half_to_f32(h); }
uint16_t fp32_to_bf16(float f) { return kernels::f32_to_bf16_inline(f); }
float bf16_to_fp32(uint16_t h) { return kernels::bf16_to_f32_inline(h); }

namespace {

constexpr int kQK = 32;

void check_k(int64_t k, const char* what) {
  if (k < 0 || k % kQK != 0) fail("{}: {} values is not a multiple of the block size {}", what, k, kQK);
}

void store_f16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}
float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

}  // namespace

void quantize_row_q8_0(const float* x, void* vy, int64_t k) {
  check_k(k, "quantize_row_q8_0");
  auto* y = static_cast<uint8_t*>(vy);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < kQK; ++j) y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
  }
}

void quantize_row_q4_0(const float* x, void* vy, int64_t k) {
  check_k(k, "quantize_row_q4_0");
  auto* y = static_cast<uint8_t*>(vy);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK, y += 18) {
    // The signed value of largest magnitude maps to -8, so the full range [-8, 7] is used on its side.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      y[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, void* vy, int64_t k) {
  check_k(k, "quantize_row_q4_1");
  auto* y = static_cast<uint8_t*>(vy);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK, y += 20) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    store_f16(y + 2, min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f)));
      y[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_q8_0(const void* vx, float* y, int64_t k) {
  check_k(k, "dequantize_row_q8_0");
  const auto* x = static_cast<const uint8_t*>(vx);
  for (int64_t b = 0; b < k / kQK; ++b, x += 34, y += kQK) {
    const float d = load_f16(x);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(x[2 + j]));
  }
}

void dequantize_row_q4_0(const void* vx, float* y, int64_t k) {
  check_k(k, "dequantize_row_q4_0");
  const auto* x = static_cast<const uint8_t*>(vx);
  for (int64_t b = 0; b < k / kQK; ++b, x += 18, y += kQK) {
    const float d = load_f16(x);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((x[2 + j] & 0x0f) - 8);
      y[j + kQK / 2] = d * static_cast<float>((x[2 + j] >> 4) - 8);
    }
  }
}

void dequantize_row_q4_1(const void* vx, float* y, int64_t k) {
  check_k(k, "dequantize_row_q4_1");
  const auto* x = static_cast<const uint8_t*>(vx);
  for (int64_t b = 0; b < k / kQK; ++b, x += 20, y += kQK) {
    const float d = load_f16(x), m = load_f16(x + 2);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(x[4 + j] & 0x0f) + m;
      y[j + kQK / 2] = d * static_cast<float>(x[4 + j] >> 4) + m;
    }
  }
}

uint64_t ggml_nbytes(GgmlType type, uint64_t n) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) fail("ggml type {} is unknown", static_cast<uint32_t>(type));
  if (n % info->block_size != 0)
    fail("{} values is not a multiple of the {} block size {}", n, info->name, info->block_size);
  return n / info->block_size * info->block_bytes;
}

void quantize_ggml(GgmlType type, const float* x, void* y, int64_t n) {
  auto* out = static_cast<uint8_t*>(y);
  switch (type) {
    case GgmlType::F32: std::memcpy(out, x, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0: quantize_row_q8_0(x, y, n); return;
    case GgmlType::Q4_0: quantize_row_q4_0(x, y, n); return;
    case GgmlType::Q4_1: quantize_row_q4_1(x, y, n); return;
    default: fail("quantizing to {} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)", ggml_type_name(type));
  }
}

void dequantize_ggml(GgmlType type, const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(x);
  switch (type) {
    case GgmlType::F32: std::memcpy(y, in, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = load_f16(in + 2 * i);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        y[i] = bf16_to_fp32(h);
      }
      return;
    case GgmlType::Q8_0: dequantize_row_q8_0(x, y, n); return;
    case GgmlType::Q4_0: dequantize_row_q4_0(x, y, n); return;
    case GgmlType::Q4_1: dequantize_row_q4_1(x, y, n); return;
    default: fail("dequantizing {} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)", ggml_type_name(type));
  }
}

std::vector<uint8_t> quantize_ggml(GgmlType type, const float* x, int64_t n) {
  std::vector<uint8_t> out(ggml_nbytes(type, static_cast<uint64_t>(n)));
  quantize_ggml(type, x, out.data(), n);
  return out;
}

uint32_t llama_ftype_for_writing(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q8_0: return 7;
    case GgmlType::BF16: return 32;
    default: fail("weight type {} cannot be written (supported: f32, f16, bf16, q8_0, q4_0)", ggml_type_name(type));
  }
}

}  // namespace lowbit
