// Scalar IEEE half (f16) and bfloat16 conversions, bit-exact and inlinable (used by the references, the
// conversion ops in ops.h and the scalar tails of the SIMD kernels).
// f32 -> 16 bit rounds to nearest, ties to even; overflow goes to ±inf; NaN stays NaN (quietened, the top
// payload bits kept); f16 subnormals are produced and read exactly.
#pragma once
#include <cstdint>
#include <cstring>

namespace lowbit::kernels {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float half_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x3FFu;
  if (e == 0) {
    // Zero or subnormal: m * 2^-24, exact in float.
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return bits_f32(f32_bits(v) | sign);
  }
  if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13));
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

inline uint16_t f32_to_half(float f) {
  uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) {  // inf or NaN
    if (x == 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u);
    return static_cast<uint16_t>(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
  }
  if (x >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65536: overflow
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): the result is a multiple of 2^-24. Adding 0.5f aligns the
    // value so that the FPU's own round-to-nearest-even leaves round(v * 2^24) in the low mantissa bits.
    const float v = bits_f32(x) + 0.5f;
    return static_cast<uint16_t>(sign | (f32_bits(v) - 0x3F000000u));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even; a carry out of
  // the mantissa correctly bumps the exponent (up to inf for [65520, 65536)).
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xC8000FFFu + odd;
  return static_cast<uint16_t>(sign | (x >> 13));
}

inline float bf16_to_f32_inline(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16_inline(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// f16 -> bf16 through the exact fp32 value (rounded to nearest even; exact for f16 values that came from bf16).
inline uint16_t f16_to_bf16_inline(uint16_t h) { return f32_to_bf16_inline(half_to_f32(h)); }

}  // namespace lowbit::kernels
