// NEON kernels of matmul_q (see matmul_q.cc): the a8 dot form, one 32-weight block at a time, for every token
// count (≤ 4 tokens share each decoded block). Included twice into the NEON target namespace (no include
// guard): LOWBIT_Q_SDOT 1 uses sdot (vdotq_s32, Armv8.2 dot product; its functions carry LOWBIT_Q_ATTR =
// target("dotprod") with clang, target("arch=armv8.2-a+dotprod+crypto") with GCC; chosen at run time from
// HWCAP_ASIMDDP), LOWBIT_Q_SDOT 0 uses vmull_s8 + vpadalq_s16.
// Both are signed × signed: codes of up to 7 bits are already valid int8; 8-bit codes are used as q − 128,
// and 128·Σxq is added back per block.
// Both variants are tested under qemu-aarch64 by scripts/test-aarch64.sh (GCC cross build).

namespace LOWBIT_Q_NS {

// Σ over 16 byte pairs into 4 int32 lanes.
LOWBIT_Q_ATTR HWY_INLINE int32x4_t Dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if LOWBIT_Q_SDOT
#if defined(__ARM_FEATURE_DOTPROD) || !defined(__clang__) || __clang_major__ >= 17
  return vdotq_s32(acc, a, b);
#else
  // Older clang declares vdotq_s32 only when the whole file is compiled with +dotprod.
  asm("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
#endif
#else
  const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  const int16x8_t hi = vmull_high_s8(a, b);
  return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

// One row against kT tokens; y[t * ldy].
template <int kBits, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8DotRowNeon(const uint8_t* HWY_RESTRICT q, size_t ng, size_t gb,
                                              const float* HWY_RESTRICT d, const float* HWY_RESTRICT mv, float mf,
                                              const A8Acts& a, size_t t0, float* HWY_RESTRICT y, size_t ldy) {
  const int8_t* xq[kT];
  const float* s[kT];
  const int32_t* isum[kT];
  float32x4_t acc[kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    isum[t] = a.isum_t(t0 + t);
    acc[t] = vdupq_n_f32(0.0f);
  }
  const uint8x16_t mask4 = vdupq_n_u8(0x0F), flip = vdupq_n_u8(0x80);
  for (size_t g = 0; g < ng; ++g) {
    float32x4_t accg[kT];
    for (size_t t = 0; t < kT; ++t) accg[t] = vdupq_n_f32(0.0f);
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      int8x16_t c0, c1;  // columns 0..15, 16..31 of the block
      if constexpr (kBits == 4) {
        const uint8x16_t v = vld1q_u8(q + 16 * b);
        c0 = vreinterpretq_s8_u8(vandq_u8(v, mask4));
        c1 = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
      } else if constexpr (kBits == 8) {
        c0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(q + 32 * b), flip));
        c1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(q + 32 * b + 16), flip));
      } else {  // bytes of up to 7 bits (a row unpacked by other code)
        c0 = vreinterpretq_s8_u8(vld1q_u8(q + 32 * b));
        c1 = vreinterpretq_s8_u8(vld1q_u8(q + 32 * b + 16));
      }
      for (size_t t = 0; t < kT; ++t) {
        int32x4_t p = vdupq_n_s32(0);
        p = Dot16(p, c0, vld1q_s8(xq[t] + 32 * b));
        p = Dot16(p, c1, vld1q_s8(xq[t] + 32 * b + 16));
        if constexpr (kBits == 8) p = vsetq_lane_s32(vgetq_lane_s32(p, 0) + 128 * isum[t][b], p, 0);
        accg[t] = vfmaq_n_f32(accg[t], vcvtq_f32_s32(p), s[t][b]);
      }
    }
    for (size_t t = 0; t < kT; ++t) acc[t] = vfmaq_n_f32(acc[t], accg[t], d[g]);
  }
  for (size_t t = 0; t < kT; ++t) {
    const float* gsum = a.gsum_t(t0 + t);
    float m = 0.0f;
    for (size_t g = 0; g < ng; ++g) m += mv[g] * gsum[g];
    y[t * ldy] = vaddvq_f32(acc[t]) + mf * m;
  }
}

template <int kBits>
LOWBIT_Q_ATTR void A8DotRowsNeon(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  thread_local Scratch<float> f_buf;
  thread_local Scratch<uint8_t> q_buf;
  float* d = f_buf.get(2 * ng);
  float* mz = d + ng;
  uint8_t* qb = kBits == 0 ? q_buf.get(a.nbp * kPackBlock) : nullptr;
  const float* mv = desc.has_zeros ? mz : d;
  const float mf = desc.has_zeros ? 1.0f : -static_cast<float>(1 << (desc.bits - 1));
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* q = W.row_codes(r);
    if (kBits == 0) {
      UnpackRowGeneric(desc, q, qb);
      q = qb;
    }
    HalvesToFloats(W.scales + r * ng, ng, d);
    if (desc.has_zeros) HalvesToFloats(W.mins + r * ng, ng, mz);
    size_t t = 0;
    for (; t + 4 <= a.n_tokens; t += 4) A8DotRowNeon<kBits, 4>(q, ng, gb, d, mv, mf, a, t, y + t * rows + r, rows);
    switch (a.n_tokens - t) {
      case 3:
        A8DotRowNeon<kBits, 3>(q, ng, gb, d, mv, mf, a, t, y + t * rows + r, rows);
        break;
      case 2:
        A8DotRowNeon<kBits, 2>(q, ng, gb, d, mv, mf, a, t, y + t * rows + r, rows);
        break;
      case 1:
        A8DotRowNeon<kBits, 1>(q, ng, gb, d, mv, mf, a, t, y + t * rows + r, rows);
        break;
      default:
        break;
    }
  }
}

// Rows [r0, r1), all tokens; group_size % 32 == 0.
LOWBIT_Q_ATTR void A8DotRange(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  switch (W.desc.bits) {
    case 8:
      return A8DotRowsNeon<8>(W, a, r0, r1, y);
    case 4:
      return A8DotRowsNeon<4>(W, a, r0, r1, y);
    default:
      return A8DotRowsNeon<0>(W, a, r0, r1, y);  // (0: unpacked bytes of up to 7 bits)
  }
}

}  // namespace LOWBIT_Q_NS
