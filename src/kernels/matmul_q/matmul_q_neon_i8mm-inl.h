// NEON prefill kernel of matmul_q with the int8 matrix multiply extension (FEAT_I8MM, Armv8.6 and some 8.2+
// cores; chosen at run time from HWCAP2_I8MM): calls of n_tokens >= KernelTuning::a8_outer_min_tokens, any bit
// width, group_size % 32 == 0. Included once into the NEON target namespace of matmul_q.cc as neon_i8mm, after
// neon_sdot (every I8MM CPU has the dot product extension; rows left over from 4-row tiles go to its dot form).
//
// usmmla (vusmmlaq_s32(acc, a, b)): a holds 2×8 unsigned bytes (row i = bytes 8i .. 8i+7), b 2×8 signed bytes;
// acc lane 2i + j += Σ_k a[i][k] · b[j][k]. With a = two weight rows' codes of 8 columns and b = two tokens'
// xq of the same columns, one instruction gives 2 rows × 2 tokens × 8 columns: 32 multiply-adds, twice sdot's.
// Codes are unsigned at every width, so no 128 offset is needed (the sdot kernels are signed × signed).
//
// Layouts, 16 bytes = one operand; accumulator lanes are [r0·t0, r0·t1, r1·t0, r1·t1] throughout:
//   PairActs, built once per call: token pair p = tokens 2p, 2p+1 (an odd last token is paired with a zero
//     token whose outputs are never stored):
//       xq[((p·nb + b)·4 + k)·16 ..] = xq_{2p}[32b + 8k .. +8] ‖ xq_{2p+1}[32b + 8k .. +8]
//       s4[(p·nb + b)·4 ..] = {s_{2p,b}, s_{2p+1,b}, s_{2p,b}, s_{2p+1,b}};  g4[(p·ng + g)·4 ..] likewise with gsum
//   Quad, built once per 4 rows r0 .. r0+3 and reused by every token pair; row pair h = rows r0+2h, r0+2h+1:
//       q[((b·4 + k)·2 + h)·16 ..] = codes (one byte each) of row r0+2h, columns 32b + 8k .. +8 ‖ of row r0+2h+1
//       d4[(g·2 + h)·4 ..] = {d_{2h}, d_{2h}, d_{2h+1}, d_{2h+1}} of group g;  z4 likewise with mz (RowScales)
// y[t][r] = Σ_g d_g · Σ_{b∈g} s_b · dot_b + Σ_g mz_g · gsum_g, the combination of the dot form.

namespace neon_i8mm {

struct PairActs {
  size_t n_pairs = 0, nb = 0, ng = 0;
  int8_t* xq = nullptr;
  float* s4 = nullptr;
  float* g4 = nullptr;
};

// Pairs [p0, p1) of the tokens of a.
LOWBIT_Q_ATTR void BuildPairs(const A8Acts& a, const PairActs& pa, size_t p0, size_t p1) {
  const size_t nb = pa.nb, ng = pa.ng;
  for (size_t p = p0; p < p1; ++p) {
    const size_t t0 = 2 * p;
    const bool two = t0 + 1 < a.n_tokens;
    const int8_t* x0 = a.xq_t(t0);
    const int8_t* x1 = two ? a.xq_t(t0 + 1) : nullptr;
    int8_t* out = pa.xq + p * nb * 64;
    for (size_t i = 0; i < nb * 4; ++i)  // i = b·4 + k: columns 8i .. 8i+7
      vst1q_s8(out + 16 * i, vcombine_s8(vld1_s8(x0 + 8 * i), two ? vld1_s8(x1 + 8 * i) : vdup_n_s8(0)));
    const auto interleave = [two](const float* v0, const float* v1, size_t n, float* out4) {
      for (size_t i = 0; i < n; ++i) {
        const float a0 = v0[i], a1 = two ? v1[i] : 0.0f;
        out4[4 * i] = a0;
        out4[4 * i + 1] = a1;
        out4[4 * i + 2] = a0;
        out4[4 * i + 3] = a1;
      }
    };
    interleave(a.s_t(t0), two ? a.s_t(t0 + 1) : nullptr, nb, pa.s4 + p * nb * 4);
    interleave(a.gsum_t(t0), two ? a.gsum_t(t0 + 1) : nullptr, ng, pa.g4 + p * ng * 4);
  }
}

// 4 rows × 2·kTP tokens (token pairs p0 .. p0+kTP-1); y points at y[0][r0].
template <size_t kTP>
LOWBIT_Q_ATTR HWY_NOINLINE void MmlaTile(const uint8_t* HWY_RESTRICT q, const float* HWY_RESTRICT d4,
                                         const float* HWY_RESTRICT z4, const PairActs& pa, size_t p0, size_t gb,
                                         size_t n_tokens, float* HWY_RESTRICT y, size_t rows) {
  const size_t nb = pa.nb, ng = pa.ng;
  const int8_t* xq[kTP];
  const float* s4[kTP];
  const float* g4[kTP];
  float32x4_t acc[2][kTP];
  for (size_t tp = 0; tp < kTP; ++tp) {
    xq[tp] = pa.xq + (p0 + tp) * nb * 64;
    s4[tp] = pa.s4 + (p0 + tp) * nb * 4;
    g4[tp] = pa.g4 + (p0 + tp) * ng * 4;
    acc[0][tp] = acc[1][tp] = vdupq_n_f32(0.0f);
  }
  for (size_t g = 0; g < ng; ++g) {
    float32x4_t accg[2][kTP];
    for (size_t tp = 0; tp < kTP; ++tp) accg[0][tp] = accg[1][tp] = vdupq_n_f32(0.0f);
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      int32x4_t P[2][kTP];
      for (size_t tp = 0; tp < kTP; ++tp) P[0][tp] = P[1][tp] = vdupq_n_s32(0);
      for (size_t k = 0; k < 4; ++k) {
        const uint8x16_t w0 = vld1q_u8(q + (b * 4 + k) * 32), w1 = vld1q_u8(q + (b * 4 + k) * 32 + 16);
        for (size_t tp = 0; tp < kTP; ++tp) {
          const int8x16_t x = vld1q_s8(xq[tp] + (b * 4 + k) * 16);
          P[0][tp] = vusmmlaq_s32(P[0][tp], w0, x);
          P[1][tp] = vusmmlaq_s32(P[1][tp], w1, x);
        }
      }
      for (size_t tp = 0; tp < kTP; ++tp) {
        const float32x4_t s = vld1q_f32(s4[tp] + 4 * b);
        accg[0][tp] = vfmaq_f32(accg[0][tp], vcvtq_f32_s32(P[0][tp]), s);
        accg[1][tp] = vfmaq_f32(accg[1][tp], vcvtq_f32_s32(P[1][tp]), s);
      }
    }
    for (size_t h = 0; h < 2; ++h) {
      const float32x4_t d = vld1q_f32(d4 + (2 * g + h) * 4), z = vld1q_f32(z4 + (2 * g + h) * 4);
      for (size_t tp = 0; tp < kTP; ++tp)
        acc[h][tp] = vfmaq_f32(vfmaq_f32(acc[h][tp], accg[h][tp], d), z, vld1q_f32(g4[tp] + 4 * g));
    }
  }
  for (size_t h = 0; h < 2; ++h)
    for (size_t tp = 0; tp < kTP; ++tp) {
      const size_t t = 2 * (p0 + tp);
      float* yr = y + t * rows + 2 * h;  // row r0 + 2h, token t
      yr[0] = vgetq_lane_f32(acc[h][tp], 0);
      yr[1] = vgetq_lane_f32(acc[h][tp], 2);
      if (t + 1 < n_tokens) {
        yr[rows] = vgetq_lane_f32(acc[h][tp], 1);
        yr[rows + 1] = vgetq_lane_f32(acc[h][tp], 3);
      }
    }
}

// Rows [r0, r1), all tokens of a (whose pairs pa holds): 4-row tiles, the rest through the sdot dot form.
LOWBIT_Q_ATTR void MmlaRange(const PackedMatrix& W, const A8Acts& a, const PairActs& pa, size_t r0, size_t r1,
                             float* y) {
  const PackedDesc& desc = W.desc;
  const size_t nb = desc.n_blocks(), ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  const size_t row_bytes = (nb + 1) / 2 * 2 * kPackBlock;  // UnpackRowGeneric's output, rounded up to whole pairs
  thread_local Scratch<uint8_t> byte_buf;
  thread_local Scratch<float> float_buf;
  uint8_t* unpacked = byte_buf.get(4 * row_bytes + nb * 128);
  uint8_t* quad = unpacked + 4 * row_bytes;
  float* d = float_buf.get(4 * 2 * ng + 2 * 8 * ng);  // per row d, mz; then d4, z4
  float* z = d + 4 * ng;
  float* d4 = z + 4 * ng;
  float* z4 = d4 + 8 * ng;
  size_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint8_t* rb[4];
    for (size_t i = 0; i < 4; ++i) {
      const uint8_t* codes = W.row_codes(r + i);
      if (desc.bits == 8) {
        rb[i] = codes;
      } else {
        UnpackRowGeneric(desc, codes, unpacked + i * row_bytes);
        rb[i] = unpacked + i * row_bytes;
      }
      RowScales(W, r + i, d + i * ng, z + i * ng);
    }
    for (size_t j = 0; j < nb * 4; ++j)  // j = b·4 + k
      for (size_t h = 0; h < 2; ++h)
        vst1q_u8(quad + (2 * j + h) * 16, vcombine_u8(vld1_u8(rb[2 * h] + 8 * j), vld1_u8(rb[2 * h + 1] + 8 * j)));
    for (size_t g = 0; g < ng; ++g)
      for (size_t h = 0; h < 2; ++h)
        for (size_t l = 0; l < 4; ++l) {
          const size_t row = 2 * h + l / 2;
          d4[(2 * g + h) * 4 + l] = d[row * ng + g];
          z4[(2 * g + h) * 4 + l] = z[row * ng + g];
        }
    size_t p = 0;
    for (; p + 2 <= pa.n_pairs; p += 2) MmlaTile<2>(quad, d4, z4, pa, p, gb, a.n_tokens, y + r, rows);
    if (p < pa.n_pairs) MmlaTile<1>(quad, d4, z4, pa, p, gb, a.n_tokens, y + r, rows);
  }
  if (r < r1) neon_sdot::A8DotRange(W, a, r, r1, y);
}

}  // namespace neon_i8mm
