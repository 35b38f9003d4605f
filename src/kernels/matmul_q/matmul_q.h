// matmul_q: y = W·x for packed groupwise-quantized weights W (quant/packed.h), both activation modes.
//
//   y[t*rows + r] = Σ_k w[r][k] · x[t][k]      t < n_tokens, r < W.desc.rows, k < W.desc.cols
//
// WeightOnly: w = d_g·q + m_g and the sum is taken in fp32 (per group: d·Σq·x + m·Σx).
// DynamicInt8: x is first quantized per token in blocks of 32 (quantize_activations below, the exact rules
// are in packed.h); then per block b of group g the integer dot Σ q·xq is scaled:
//   y += d_g·s_b·Σ_j q_j·xq_j + m_g·s_b·Σ_j xq_j      (symmetric: m_g = -2^(bits-1)·d_g)
// Only the float combination of the integer block dots differs between the fast kernels and the reference.
//
// The fast version is compiled per SIMD target (Highway) and dispatched at run time; on AVX-512 CPUs with
// VNNI + VBMI + GFNI (Ice Lake, Zen 4, ...) it further switches to vpdpbusd / vpermb / gf2p8affineqb kernels.
// ref::matmul_q (ref.cc) is the plain scalar specification.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/thread_pool.h"
#include "quant/packed.h"

namespace lowbit::kernels {

// W must satisfy W.desc.validate(); x is n_tokens × cols, y is n_tokens × rows. Thread-safe (scratch is
// per thread); the pool must not be running another job.
void matmul_q(ThreadPool& pool, const PackedMatrix& W, const float* x, size_t n_tokens, float* y);

// The DynamicInt8 activation quantizer (one token): for each block b of 32 values of x[0 .. cols) (the last
// block zero-padded): amax = max |x|, scales[b] = amax / 127, xq = round-half-even(x · (127 / amax)) (0 when
// amax = 0), sums[b] = Σ xq. xq receives n_blocks·32 values, scales and sums n_blocks values each.
// This SIMD version is bit-identical to ref::quantize_activations (tested on every target).
void quantize_activations(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums);

// Which code path matmul_q takes on this CPU: the Highway target, plus "+VNNI" when the AVX-512
// VNNI/VBMI/GFNI kernels are used, "+SDOT" / "+SDOT+I8MM" for the NEON ones (e.g. "AVX3+VNNI", "AVX2",
// "NEON+SDOT+I8MM", "SCALAR").
const char* matmul_q_target_name();

// Whether matmul_q multiplies from row tiles (quant/row_tiles.h) when a matrix has them (AVX-512 VNNI); the
// loader builds them only then.
bool matmul_q_uses_row_tiles();

// Tests only: forbid (false) or allow (true, the default) the AVX-512 VNNI/VBMI/GFNI kernels, so that the
// plain AVX3 kernels can be tested on a CPU that has those extensions.
void matmul_q_allow_vnni_for_test(bool allow);
// Tests only: forbid or allow the NEON I8MM (usmmla) prefill kernel, so that the sdot kernels can be tested on a
// CPU that has both.
void matmul_q_allow_i8mm_for_test(bool allow);

namespace ref {
void quantize_activations(const float* x, size_t cols, int8_t* xq, float* scales, int32_t* sums);
void matmul_q(const PackedMatrix& W, const float* x, size_t n_tokens, float* y);
}  // namespace ref

}  // namespace lowbit::kernels
