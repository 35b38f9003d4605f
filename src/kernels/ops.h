// The compute kernels the runtime calls. Each op has a plain reference in kernels/ref.* that defines it;
// the fast versions (Highway, dispatched at run time to the best SIMD target of this CPU) must match it.
// Matrices are row-major. A linear weight W is `rows × cols` (out × in), each row contiguous.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/thread_pool.h"

namespace lowbit::kernels {

enum class WeightType { F32, F16, BF16 };
size_t weight_type_bytes(WeightType t);

// How a dense weight's rows × cols values are laid out.
//   Rows:  row-major, W[r*cols + k].
//   Tiles: rows in groups of kDenseTileRows = 32. Group g is stored column by column ("k-major"): element
//          (g*32 + i, k) at g*32*cols + k*32 + i, i.e. at the offset where row g*32 starts in the row layout,
//          so each k gives one 64-byte line (16-bit) of 32 rows. The rows % 32 tail rows keep the row layout
//          (row r at r*cols), so both layouts take the same bytes. Decode reads a group as one sequential
//          stream, multiplying each line by a broadcast activation: no lane sums, one stream per thread.
enum class DenseLayout { Rows, Tiles };
constexpr size_t kDenseTileRows = 32;
// Index of element (r, k) in the given layout.
inline size_t dense_index(DenseLayout layout, size_t rows, size_t cols, size_t r, size_t k) {
  const size_t tiled_rows = rows / kDenseTileRows * kDenseTileRows;
  if (layout == DenseLayout::Rows || r >= tiled_rows) return r * cols + k;
  return (r - r % kDenseTileRows) * cols + k * kDenseTileRows + r % kDenseTileRows;
}
// Number of row groups of a rows-row matrix, counting the rows % 32 tail as a last, partial group.
inline size_t dense_groups(size_t rows) { return (rows + kDenseTileRows - 1) / kDenseTileRows; }
// Writes row groups [g0, g1) (of dense_groups(rows)) of a row-major matrix (elements of `esize` bytes) into dst
// in the tile layout; a partial last group is copied as rows. dst and src must not overlap.
void dense_rows_to_tiles(size_t esize, const void* src, size_t rows, size_t cols, void* dst, size_t g0, size_t g1);
// Whether matmul's tile layout beats the row layout for decode on this CPU (the runtime then rearranges dense
// weights at load).
bool matmul_uses_dense_tiles();

// y[t*rows + r] = sum_k W(r, k) * x[t*cols + k]   for t < n_tokens, r < rows.
// n_tokens == 1 is the decode (matrix–vector) case; larger n_tokens the prefill (matrix–matrix) case.
void matmul(ThreadPool& pool, WeightType wt, const void* W, size_t rows, size_t cols, const float* x,
            size_t n_tokens, float* y, DenseLayout layout = DenseLayout::Rows);

// Prefill with bf16 activations: y as matmul for bf16 weights W, except that every activation is first rounded to
// bf16 (nearest even); products are exact and summed in fp32. Two kernels, each for the layout its CPU keeps:
// AVX512-BF16 `vdpbf16ps` on x86 (kernels/matmul_bf16_dot.cc, W in DenseLayout::Tiles) and Arm BF16 `bfmmla`
// on aarch64 (kernels/matmul_bf16_mmla_neon.cc, W in DenseLayout::Rows; its sums round to odd, as that
// instruction does). wt is BF16 or F16: f16 weights are then rounded to bf16 as well.
// The Session uses it for 16-bit weights from kBf16DotMinTokens tokens on where the CPU has it (2-4× the fp32
// FMA rate); decode keeps the weights' own values and fp32 activations.
bool matmul_bf16_dot_available(DenseLayout layout, WeightType wt = WeightType::BF16);
void matmul_bf16_dot(ThreadPool& pool, WeightType wt, const uint16_t* W, DenseLayout layout, size_t rows,
                     size_t cols, const float* x, size_t n_tokens, float* y);
constexpr size_t kBf16DotMinTokens = 8;

// y = x / sqrt(mean(x^2) + eps) * w, over n values (y may alias x).
void rmsnorm(const float* x, const float* w, float* y, size_t n, float eps);

// llama.cpp's "normal" RoPE on one token: for each head h and pair i < rot_dim/2, rotate
// (v[h*head_dim + 2i], v[h*head_dim + 2i + 1]) by angle pos * freq_base^(-2i/rot_dim).
void rope(float* v, size_t n_heads, size_t head_dim, size_t rot_dim, size_t pos, float freq_base);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, size_t n);

// Causal grouped-query attention for n_tokens new tokens at positions pos0 .. pos0+n_tokens-1.
// q:   [n_tokens][n_heads * head_dim]
// k,v: the cache, already holding the new tokens' keys and values: element d of kv head g at position j is
//      k[g * head_stride + j * kv_stride + d]. head_stride 0 means head_dim, i.e. rows [pos][n_kv_heads *
//      head_dim] with row stride kv_stride; the Session uses head-major [kv head][pos][head_dim] (head_stride
//      n_ctx · head_dim, kv_stride head_dim), so that each head's keys stream contiguously at long context.
//      Query head h uses kv head h / (n_heads / n_kv_heads).
// out: [n_tokens][n_heads * head_dim]. Scores are scaled by 1/sqrt(head_dim) and softmaxed in fp32.
void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const float* k, const float* v,
               size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out,
               size_t head_stride = 0);
// The same over an f16 cache (IEEE half bits; --kv-type f16): half the bytes to read per key at long context.
void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const uint16_t* k, const uint16_t* v,
               size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out,
               size_t head_stride = 0);

// The same over an int8 cache (--kv-type int8): each stored head vector (head_dim values of one kv head at one
// position) is codes × one fp32 scale, made by quantize_kv_int8; the scale of kv head g at position j is
// scales.k[g * scales.head_stride + j * scales.stride] (values: scales.v). A quarter of fp32's bytes per key.
// Each query vector (one head of one token) is rounded the same way, so that q·k is an integer dot product
// (vpdpbusd where the CPU has AVX512-VNNI, sdot with Arm's dot product extension); the result is attention over
// those dequantized queries and keys.
struct KVCacheScales {
  const float* k;
  const float* v;
  size_t stride;
  size_t head_stride;
};
void attention(ThreadPool& pool, const float* q, size_t n_tokens, size_t pos0, const int8_t* k, const int8_t* v,
               const KVCacheScales& scales, size_t kv_stride, size_t n_heads, size_t n_kv_heads, size_t head_dim,
               float* out, size_t head_stride = 0);
// Symmetric per-vector int8: q[i] = round-half-even(x[i] · 127 / max|x|); returns the scale max|x| / 127
// (zero codes and scale 0 for a zero vector; zero codes and a NaN scale for a non-finite one, so that the NaN
// reaches the output as it would from an fp32 cache).
float quantize_kv_int8(const float* x, size_t n, int8_t* q);
// Tests: false makes the int8-cache attention skip its AVX512-VNNI / sdot scores (the plain loops run instead).
void attention_allow_vnni_for_test(bool allow);

// Conversions used to hold weights in 16-bit runtime layouts (round to nearest even).
void f32_to_f16(const float* x, uint16_t* y, size_t n);
void f32_to_bf16(const float* x, uint16_t* y, size_t n);
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);

// Name of the SIMD target chosen at run time (e.g. "AVX3_ZEN4", "AVX2", "NEON", "EMU128").
const char* simd_target_name();

namespace ref {
// Plain scalar references, the specification of the ops above.
void matmul(WeightType wt, const void* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y);
// matmul_bf16_dot's definition: bf16 weights W (row-major), activations rounded to bf16 first.
void matmul_bf16_acts(const uint16_t* W, size_t rows, size_t cols, const float* x, size_t n_tokens, float* y);
void attention(const float* q, size_t n_tokens, size_t pos0, const float* k, const float* v, size_t kv_stride,
               size_t n_heads, size_t n_kv_heads, size_t head_dim, float* out, size_t head_stride = 0);
void rmsnorm(const float* x, const float* w, float* y, size_t n, float eps);
void rope(float* v, size_t n_heads, size_t head_dim, size_t rot_dim, size_t pos, float freq_base);
void swiglu(const float* gate, const float* up, float* out, size_t n);
}  // namespace ref

}  // namespace lowbit::kernels
