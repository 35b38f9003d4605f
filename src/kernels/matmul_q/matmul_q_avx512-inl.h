// AVX-512 kernels of matmul_q (see matmul_q.cc for the overall structure). Included twice into the AVX3 target
// namespace of matmul_q.cc (no include guard):
//   LOWBIT_Q_VNNI 0  AVX-512 F/BW/DQ/VL only: u8×s8 dots with vpmaddubsw + vpmaddwd (8-bit codes split into
//                    q & 0x7F and q & 0x80 so the int16 pair sums cannot saturate); bit planes unpacked by the
//                    portable code.
//   LOWBIT_Q_VNNI 1  + AVX512-VNNI, VBMI, GFNI (LOWBIT_Q_ATTR adds them to every function here): vpdpbusd;
//                    nibbles and bit planes decoded in registers with vpermb + gf2p8affineqb.
// Highway 1.0.3's own AVX3_DL target is not used: its target string includes AVX-VNNI (the VEX encoding), and
// GCC then emits `{vex} vpdpbusd` for 256-bit dots (even auto-vectorized scalar loops), which faults on CPUs
// with AVX512-VNNI but no AVX-VNNI (Zen 4, Ice Lake).
//
// Codes are handled as "pairs": two consecutive 32-weight blocks = 64 codes in one zmm, natural order
// (byte j of the pair = code of column 64·i + j). Activations xq of a token are in the same order, so the
// int32 lane l of a pair's dot covers columns 4l .. 4l+3: lanes 0-7 belong to the first block, 8-15 to the
// second, and the per-lane activation scale vector is A8Acts::s8x[16 i .. 16 i + 16).

namespace LOWBIT_Q_NS {

#define LOWBIT_QF LOWBIT_Q_ATTR HWY_INLINE

// ---------------------------------------------------------------------------------------------------------
// u8 × s8 dot products with int32 accumulation, 4 products per lane.

struct CodeVec {
  __m512i a, b;  // the codes (a), or for 8-bit codes without VNNI: a = q & 0x7F, b = q & 0x80
};

template <bool k8>
LOWBIT_QF CodeVec PrepCodes(__m512i c) {
#if LOWBIT_Q_VNNI
  return {c, c};
#else
  if constexpr (k8) {
    return {_mm512_and_si512(c, _mm512_set1_epi8(0x7F)), _mm512_and_si512(c, _mm512_set1_epi8(char(0x80)))};
  } else {
    return {c, c};
  }
#endif
}

// acc + Σ_{4 bytes of each lane} c·x
template <bool k8>
LOWBIT_QF __m512i DotAcc(const CodeVec& c, __m512i x, __m512i acc) {
#if LOWBIT_Q_VNNI
  return _mm512_dpbusd_epi32(acc, c.a, x);
#else
  const __m512i ones = _mm512_set1_epi16(1);
  // vpmaddubsw saturates int16 pair sums: 2·127·127 (codes < 128) and 2·128·127 (q & 0x80) both fit.
  __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(c.a, x), ones);
  if constexpr (k8) p = _mm512_add_epi32(p, _mm512_madd_epi16(_mm512_maddubs_epi16(c.b, x), ones));
  return _mm512_add_epi32(acc, p);
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Code sources: pair(i) = blocks 2i and 2i+1 of a row as 64 bytes; tail(i) the same for a last pair whose
// second block does not exist (masked loads: never reading past the row; the missing block reads as zeros).

template <bool k8_>
struct Src8 {  // bytes, one per code: 8-bit codes, or a row unpacked by other code (k8 = false)
  static constexpr bool k8 = k8_;
  static constexpr bool kNibble = false;
  const uint8_t* p = nullptr;
  size_t nb = 0;
  LOWBIT_QF __m512i pair(size_t i) const { return _mm512_loadu_si512(p + 64 * i); }
  LOWBIT_QF __m512i tail(size_t i) const { return _mm512_maskz_loadu_epi8(0xFFFFFFFFull, p + 64 * i); }
};

struct Src4 {  // 4-bit: 16 bytes per block, byte j = q_j | q_{j+16} << 4
  // Decoded in "nibble order" (A8Acts::nibble_order): the low nibbles of the pair's 32 bytes, then the high
  // nibbles, i.e. columns [A0..15, B0..15, A16..31, B16..31]; the activations are stored in the same order.
  // (Two ALU ops that are not on the multiply pipes; gf2p8affineqb would compete with vpdpbusd.)
  static constexpr bool k8 = false;
  static constexpr bool kNibble = true;
  const uint8_t* p = nullptr;
  size_t nb = 0;
  LOWBIT_QF __m512i pair(size_t i) const {
    return decode(_mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * i))));
  }
  LOWBIT_QF __m512i tail(size_t i) const {
    return decode(_mm512_broadcast_i64x4(_mm256_maskz_loadu_epi8(0xFFFF, p + 32 * i)));
  }
  LOWBIT_QF static __m512i decode(__m512i z) {
    z = _mm512_mask_srli_epi16(z, 0xFFFF0000u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
  }
  // Natural order (for unpacking to bytes): 128-bit chunks [A, A, B, B], then per chunk low / high nibbles.
  LOWBIT_QF static __m512i decode_natural(__m256i v) {
    __m512i z = _mm512_castsi256_si512(v);
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0));
    z = _mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
  }
};

#if LOWBIT_Q_VNNI
// Bit planes (bits 1-3, 5-7; 4·bits bytes per block). vpermb gathers, for each group of 8 columns, the plane
// bytes into one qword (plane p at byte 7-p, missing planes zero); gf2p8affineqb with that qword as the
// matrix and the one-hot bytes 1 << k as data then transposes the 8×8 bits: byte k = code of column k.
struct SrcPlanes {
  static constexpr bool k8 = false;
  static constexpr bool kNibble = false;
  const uint8_t* p = nullptr;
  size_t nb = 0, bb = 0;  // blocks, bytes per block
  __m512i idx, onehot;
  __mmask64 kperm = 0, kfull = 0, khalf = 0;

  LOWBIT_Q_ATTR SrcPlanes(int bits, size_t nb_) : nb(nb_), bb(4 * static_cast<size_t>(bits)) {
    alignas(64) uint8_t ix[64];
    for (size_t j = 0; j < 8; ++j) {      // qword j: columns 8j .. 8j+7 of the pair
      for (size_t pos = 0; pos < 8; ++pos) {
        const size_t plane = 7 - pos;
        const bool used = plane < static_cast<size_t>(bits);
        ix[8 * j + pos] = used ? static_cast<uint8_t>((j / 4) * bb + 4 * plane + (j % 4)) : 0;
        if (used) kperm |= __mmask64{1} << (8 * j + pos);
      }
    }
    idx = _mm512_load_si512(ix);
    onehot = _mm512_set1_epi64(0x8040201008040201ll);
    kfull = (__mmask64{1} << (2 * bb)) - 1;  // 2·bb <= 56
    khalf = (__mmask64{1} << bb) - 1;
  }
  LOWBIT_QF __m512i pair(size_t i) const { return decode(_mm512_maskz_loadu_epi8(kfull, p + 2 * bb * i)); }
  LOWBIT_QF __m512i tail(size_t i) const { return decode(_mm512_maskz_loadu_epi8(khalf, p + 2 * bb * i)); }
  LOWBIT_QF __m512i decode(__m512i data) const {
    const __m512i t = _mm512_maskz_permutexvar_epi8(kperm, idx, data);
    return _mm512_gf2p8affine_epi64_epi8(onehot, t, 0);
  }
};
#endif

// One row's codes as bytes: n_blocks rounded up to even, × 32 (the padding block is zero).
LOWBIT_Q_ATTR void UnpackRow(const PackedDesc& desc, const uint8_t* HWY_RESTRICT codes, uint8_t* HWY_RESTRICT out) {
  const size_t nb = desc.n_blocks(), np = (nb + 1) / 2;
  if (desc.bits == 8) {
    std::memcpy(out, codes, nb * kPackBlock);
    if (nb % 2) std::memset(out + nb * kPackBlock, 0, kPackBlock);
    return;
  }
  if (desc.bits == 4) {
    for (size_t i = 0; i < nb / 2; ++i)
      _mm512_storeu_si512(out + 64 * i,
                          Src4::decode_natural(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * i))));
    if (nb % 2)
      _mm512_storeu_si512(out + 64 * (np - 1), Src4::decode_natural(_mm256_maskz_loadu_epi8(0xFFFF, codes + 32 * (np - 1))));
    return;
  }
#if LOWBIT_Q_VNNI
  SrcPlanes src(desc.bits, nb);
  src.p = codes;
  for (size_t i = 0; i < nb / 2; ++i) _mm512_storeu_si512(out + 64 * i, src.pair(i));
  if (nb % 2) _mm512_storeu_si512(out + 64 * (np - 1), src.tail(np - 1));
#else
  UnpackRowGeneric(desc, codes, out);
  if (nb % 2) std::memset(out + nb * kPackBlock, 0, kPackBlock);
#endif
}

LOWBIT_QF void HalvesToFloats512(const uint16_t* HWY_RESTRICT h, size_t n, float* HWY_RESTRICT out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
  }
}

// Σ_g mz[g] · gsum[g]
LOWBIT_QF float MTerm(const float* HWY_RESTRICT mz, const float* HWY_RESTRICT gsum, size_t ng) {
  __m512 v = _mm512_setzero_ps();
  size_t g = 0;
  for (; g + 16 <= ng; g += 16) v = _mm512_fmadd_ps(_mm512_loadu_ps(mz + g), _mm512_loadu_ps(gsum + g), v);
  if (g < ng) {
    const __mmask16 m = static_cast<__mmask16>((1u << (ng - g)) - 1);
    v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, mz + g), _mm512_maskz_loadu_ps(m, gsum + g), v);
  }
  return _mm512_reduce_add_ps(v);
}

// ---------------------------------------------------------------------------------------------------------
// Dot form: one row against kT <= 4 tokens t0 .. t0+kT-1. Each token's result is a vector whose lane sum,
// plus the m term, is the output. Each pair's int32 lanes must be converted to fp32 and scaled by their
// block's activation scale s (and by d); with one token, kU independent accumulator chains per token hide the
// 4-cycle FMA latency.

// Groups of an even number of blocks: every pair lies in one group.
template <class Src, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8DotRowEven(const Src& src, size_t ng, size_t pg, const float* HWY_RESTRICT d,
                                              const A8Acts& a, size_t t0, __m512 (&out)[kT]) {
  constexpr bool k8 = Src::k8;
  constexpr size_t kU = kT == 1 ? 4 : kT == 2 ? 2 : 1;
  const int8_t* xq[kT];
  const float* s8[kT];
  __m512 acc[kU][kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s8[t] = a.s8x_t(t0 + t);
    for (size_t u = 0; u < kU; ++u) acc[u][t] = _mm512_setzero_ps();
  }
  if (pg <= 2) {
    // One or two pairs per group: d folded into the scale, acc += cvt(P) · (s · d).
    const size_t np = ng * pg, shift = pg == 2 ? 1 : 0;
    const auto step = [&](size_t i, size_t u) LOWBIT_Q_ATTR {
      const __m512 dv = _mm512_set1_ps(d[i >> shift]);
      const CodeVec c = PrepCodes<k8>(src.pair(i));
      for (size_t t = 0; t < kT; ++t) {
        const __m512i p = DotAcc<k8>(c, _mm512_loadu_si512(xq[t] + 64 * i), _mm512_setzero_si512());
        acc[u][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(_mm512_loadu_ps(s8[t] + 16 * i), dv),
                                    acc[u][t]);
      }
    };
    size_t i = 0;
    for (; i + kU <= np; i += kU)
      for (size_t u = 0; u < kU; ++u) step(i + u, u);
    for (; i < np; ++i) step(i, 0);
  } else {
    // Longer groups: a group accumulator (kU chains) times d at the group's end.
    for (size_t g = 0; g < ng; ++g) {
      __m512 accg[kU][kT];
      for (size_t u = 0; u < kU; ++u)
        for (size_t t = 0; t < kT; ++t) accg[u][t] = _mm512_setzero_ps();
      const auto step = [&](size_t i, size_t u) LOWBIT_Q_ATTR {
        const CodeVec c = PrepCodes<k8>(src.pair(i));
        for (size_t t = 0; t < kT; ++t) {
          const __m512i p = DotAcc<k8>(c, _mm512_loadu_si512(xq[t] + 64 * i), _mm512_setzero_si512());
          accg[u][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_loadu_ps(s8[t] + 16 * i), accg[u][t]);
        }
      };
      size_t i = g * pg;
      const size_t e = i + pg;
      for (; i + kU <= e; i += kU)
        for (size_t u = 0; u < kU; ++u) step(i + u, u);
      for (; i < e; ++i) step(i, 0);
      const __m512 dv = _mm512_set1_ps(d[g]);
      for (size_t u = 0; u < kU; ++u)
        for (size_t t = 0; t < kT; ++t) acc[u][t] = _mm512_fmadd_ps(accg[u][t], dv, acc[u][t]);
    }
  }
  for (size_t t = 0; t < kT; ++t) {
    for (size_t u = 1; u < kU; ++u) acc[0][t] = _mm512_add_ps(acc[0][t], acc[u][t]);
    out[t] = acc[0][t];
  }
}

// Groups of an odd number of blocks (32, 96, ...): the blocks of a pair may need different d. Per 8 pairs
// (16 blocks) the int32 lanes are first summed per block by a tree of unpack/add steps (21 instructions for
// 8 vectors), leaving one vector of 16 block dots, which is converted and scaled by d_b·s_b at once.
// dblk[b] = d of block b's group.
template <bool kNibble>
LOWBIT_QF __m512i BlockSums(const __m512i (&p)[8]) {
  __m512i w[4], v[2];
  for (size_t j = 0; j < 4; ++j)
    w[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * j], p[2 * j + 1]), _mm512_unpackhi_epi32(p[2 * j], p[2 * j + 1]));
  for (size_t j = 0; j < 2; ++j)
    v[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(w[2 * j], w[2 * j + 1]), _mm512_unpackhi_epi32(w[2 * j], w[2 * j + 1]));
  // v[j] lane 4c + k = Σ of 128-bit chunk c of p[4j + (0, 2, 1, 3)[k]]. A pair's first block is in chunks 0, 1
  // (natural order) or 0, 2 (nibble order).
  const __m512i r =
      kNibble ? _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x44), _mm512_shuffle_i32x4(v[0], v[1], 0xEE))
              : _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x88), _mm512_shuffle_i32x4(v[0], v[1], 0xDD));
  // r's lanes hold blocks 0 4 2 6 1 5 3 7 8 12 10 14 9 13 11 15; this permutation is its own inverse.
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7, 8, 12, 10, 14, 9, 13, 11, 15), r);
}

template <class Src, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8DotRowOdd(const Src& src, const float* HWY_RESTRICT dblk, const A8Acts& a,
                                             size_t t0, __m512 (&out)[kT]) {
  constexpr bool k8 = Src::k8;
  const size_t nb = src.nb;
  const int8_t* xq[kT];
  const float* s[kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    out[t] = _mm512_setzero_ps();
  }
  for (size_t b0 = 0; b0 < nb; b0 += 16) {
    const size_t nbc = std::min<size_t>(16, nb - b0), npc = (nbc + 1) / 2;
    const __mmask16 m = static_cast<__mmask16>((1u << nbc) - 1);
    CodeVec c[8];
    for (size_t j = 0; j < 8; ++j) {
      if (j >= npc) break;
      const size_t i = b0 / 2 + j;
      c[j] = PrepCodes<k8>(2 * i + 1 < nb ? src.pair(i) : src.tail(i));
    }
    const __m512 dv = _mm512_maskz_loadu_ps(m, dblk + b0);
    for (size_t t = 0; t < kT; ++t) {
      __m512i p[8];
      for (size_t j = 0; j < 8; ++j)
        p[j] = j < npc ? DotAcc<k8>(c[j], _mm512_loadu_si512(xq[t] + 32 * b0 + 64 * j), _mm512_setzero_si512())
                       : _mm512_setzero_si512();
      const __m512 sd = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s[t] + b0), dv);
      out[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(BlockSums<Src::kNibble>(p)), sd, out[t]);
    }
  }
}

// The m term is mf · Σ_g mv[g] · gsum[g]: mv = mins, mf = 1, or (symmetric) mv = d, mf = -2^(bits-1).
template <class Src, size_t kT>
LOWBIT_Q_ATTR void A8DotRowT(const Src& src, size_t ng, size_t gb, const float* HWY_RESTRICT d,
                             const float* HWY_RESTRICT dblk, const float* HWY_RESTRICT mv, float mf,
                             const A8Acts& a, size_t t0, float* HWY_RESTRICT y, size_t ldy) {
  __m512 v[kT];
  if (gb % 2 == 0)
    A8DotRowEven<Src, kT>(src, ng, gb / 2, d, a, t0, v);
  else
    A8DotRowOdd<Src, kT>(src, dblk, a, t0, v);
  for (size_t t = 0; t < kT; ++t)
    y[t * ldy] = _mm512_reduce_add_ps(v[t]) + mf * MTerm(mv, a.gsum_t(t0 + t), ng);
}

template <class Src>
LOWBIT_Q_ATTR void A8DotRows(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* HWY_RESTRICT y,
                             Src src, bool unpack) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows, nb = a.nb;
  thread_local Scratch<float> f_buf;
  thread_local Scratch<uint8_t> q_buf;
  float* d = f_buf.get(2 * ng + nb);
  float* mz = d + ng;
  // d per block, for odd group lengths of more than one block.
  float* dblk = gb == 1 ? d : mz + ng;
  uint8_t* q = unpack ? q_buf.get(a.nbp * kPackBlock) : nullptr;
  const float* mv = desc.has_zeros ? mz : d;
  const float mf = desc.has_zeros ? 1.0f : -static_cast<float>(1 << (desc.bits - 1));
  for (size_t r = r0; r < r1; ++r) {
    if (unpack) {
      UnpackRow(desc, W.row_codes(r), q);
      src.p = q;
    } else {
      src.p = W.row_codes(r);
    }
    HalvesToFloats512(W.scales + r * ng, ng, d);
    if (desc.has_zeros) HalvesToFloats512(W.mins + r * ng, ng, mz);
    if (gb % 2 == 1 && gb > 1)
      for (size_t b = 0; b < nb; ++b) dblk[b] = d[b / gb];
    size_t t = 0;
    for (; t + 4 <= a.n_tokens; t += 4)
      A8DotRowT<Src, 4>(src, ng, gb, d, dblk, mv, mf, a, t, y + t * rows + r, rows);
    switch (a.n_tokens - t) {
      case 3:
        A8DotRowT<Src, 3>(src, ng, gb, d, dblk, mv, mf, a, t, y + t * rows + r, rows);
        break;
      case 2:
        A8DotRowT<Src, 2>(src, ng, gb, d, dblk, mv, mf, a, t, y + t * rows + r, rows);
        break;
      case 1:
        A8DotRowT<Src, 1>(src, ng, gb, d, dblk, mv, mf, a, t, y + t * rows + r, rows);
        break;
      default:
        break;
    }
  }
}

// Rows [r0, r1), all tokens; group_size % 32 == 0.
LOWBIT_Q_ATTR void A8DotRange(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  const size_t nb = W.desc.n_blocks();
  switch (W.desc.bits) {
    case 8: {
      Src8<true> src;
      src.nb = nb;
      return A8DotRows(W, a, r0, r1, y, src, false);
    }
    case 4: {
      Src4 src;
      src.nb = nb;
      return A8DotRows(W, a, r0, r1, y, src, false);
    }
    default: {
#if LOWBIT_Q_VNNI
      SrcPlanes src(W.desc.bits, nb);
      return A8DotRows(W, a, r0, r1, y, src, false);
#else
      Src8<false> src;
      src.nb = nb;
      return A8DotRows(W, a, r0, r1, y, src, true);
#endif
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Outer-product form (prefill). A panel holds kPanelRows rows' codes interleaved per dword:
//   panel[(b·8 + kd)·32 + r] = codes of row r, columns 32b + 4kd .. 32b + 4kd + 3   (4 bytes)
// so one zmm load gives 16 rows × 4 columns, and vpdpbusd against a broadcast dword of xq (4 columns of one
// token) accumulates 16 rows at once. Dp/Mp hold the rows' d and mz per group: Dp[g·32 + r].

constexpr size_t kPanelRows = 32;

// Rows rb .. rb+31 (nr of them real) × tokens t0 .. t0+kT-1, over all groups; y points at y[t0][rb].
template <bool k8, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8OuterTile(const uint32_t* HWY_RESTRICT panel, const float* HWY_RESTRICT Dp,
                                             const float* HWY_RESTRICT Mp, const A8Acts& a, size_t t0, size_t ng,
                                             size_t gb, float* HWY_RESTRICT y, size_t ldy, size_t nr) {
  const int8_t* xq[kT];
  const float* s[kT];
  const float* gsum[kT];
  __m512 acc[2][kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    gsum[t] = a.gsum_t(t0 + t);
    acc[0][t] = acc[1][t] = _mm512_setzero_ps();
  }
  for (size_t g = 0; g < ng; ++g) {
    __m512 accg[2][kT];
    for (size_t t = 0; t < kT; ++t) accg[0][t] = accg[1][t] = _mm512_setzero_ps();
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      __m512i P[2][kT];
      for (size_t t = 0; t < kT; ++t) P[0][t] = P[1][t] = _mm512_setzero_si512();
      const uint32_t* pc = panel + b * 8 * kPanelRows;
      for (size_t kd = 0; kd < 8; ++kd) {
        const CodeVec c0 = PrepCodes<k8>(_mm512_loadu_si512(pc + kd * kPanelRows));
        const CodeVec c1 = PrepCodes<k8>(_mm512_loadu_si512(pc + kd * kPanelRows + 16));
        for (size_t t = 0; t < kT; ++t) {
          int32_t xw;
          std::memcpy(&xw, xq[t] + b * kPackBlock + 4 * kd, 4);
          const __m512i xb = _mm512_set1_epi32(xw);
          P[0][t] = DotAcc<k8>(c0, xb, P[0][t]);
          P[1][t] = DotAcc<k8>(c1, xb, P[1][t]);
        }
      }
      for (size_t t = 0; t < kT; ++t) {
        const __m512 sv = _mm512_set1_ps(s[t][b]);
        accg[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P[0][t]), sv, accg[0][t]);
        accg[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P[1][t]), sv, accg[1][t]);
      }
    }
    for (size_t j = 0; j < 2; ++j) {
      const __m512 dv = _mm512_loadu_ps(Dp + g * kPanelRows + 16 * j);
      const __m512 mv = _mm512_loadu_ps(Mp + g * kPanelRows + 16 * j);
      for (size_t t = 0; t < kT; ++t) {
        acc[j][t] = _mm512_fmadd_ps(accg[j][t], dv, acc[j][t]);
        acc[j][t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(gsum[t][g]), acc[j][t]);
      }
    }
  }
  for (size_t j = 0; j < 2; ++j) {
    const size_t n = nr > 16 * j ? std::min<size_t>(16, nr - 16 * j) : 0;
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    for (size_t t = 0; t < kT; ++t) _mm512_mask_storeu_ps(y + t * ldy + 16 * j, m, acc[j][t]);
  }
}

template <bool k8>
LOWBIT_Q_ATTR void A8OuterTokens(const uint32_t* panel, const float* Dp, const float* Mp, const A8Acts& a,
                                 size_t ng, size_t gb, float* y, size_t rows, size_t nr) {
  size_t t = 0;
  for (; t + 4 <= a.n_tokens; t += 4) A8OuterTile<k8, 4>(panel, Dp, Mp, a, t, ng, gb, y + t * rows, rows, nr);
  switch (a.n_tokens - t) {
    case 3:
      A8OuterTile<k8, 3>(panel, Dp, Mp, a, t, ng, gb, y + t * rows, rows, nr);
      break;
    case 2:
      A8OuterTile<k8, 2>(panel, Dp, Mp, a, t, ng, gb, y + t * rows, rows, nr);
      break;
    case 1:
      A8OuterTile<k8, 1>(panel, Dp, Mp, a, t, ng, gb, y + t * rows, rows, nr);
      break;
    default:
      break;
  }
}

// Rows [r0, r1), all tokens; group_size % 32 == 0.
LOWBIT_Q_ATTR void A8OuterRange(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  const size_t nbp = a.nbp, nd = nbp * 8;  // dwords per row
  thread_local Scratch<uint32_t> panel_buf;
  thread_local Scratch<uint8_t> row_buf;
  thread_local Scratch<float> f_buf;
  uint32_t* panel = panel_buf.get(nd * kPanelRows);
  uint8_t* rowq = row_buf.get(nbp * kPackBlock);
  float* Dp = f_buf.get(2 * ng * kPanelRows + 2 * ng);  // Dp, Mp, then the row's d, mz
  float* Mp = Dp + ng * kPanelRows;
  float* d = Mp + ng * kPanelRows;
  float* mz = d + ng;
  const bool k8 = !LOWBIT_Q_VNNI && desc.bits == 8;
  for (size_t rb = r0; rb < r1; rb += kPanelRows) {
    const size_t nr = std::min(kPanelRows, r1 - rb);
    for (size_t i = 0; i < kPanelRows; ++i) {
      if (i < nr) {
        UnpackRow(desc, W.row_codes(rb + i), rowq);
        RowScales(W, rb + i, d, mz);
        for (size_t g = 0; g < ng; ++g) {
          Dp[g * kPanelRows + i] = d[g];
          Mp[g * kPanelRows + i] = mz[g];
        }
        for (size_t kd = 0; kd < nd; ++kd) std::memcpy(&panel[kd * kPanelRows + i], rowq + 4 * kd, 4);
      } else {  // rows past the range: zero codes and scales, results not stored
        for (size_t g = 0; g < ng; ++g) Dp[g * kPanelRows + i] = Mp[g * kPanelRows + i] = 0.0f;
        for (size_t kd = 0; kd < nd; ++kd) panel[kd * kPanelRows + i] = 0;
      }
    }
    if (k8)
      A8OuterTokens<true>(panel, Dp, Mp, a, ng, gb, y + rb, rows, nr);
    else
      A8OuterTokens<false>(panel, Dp, Mp, a, ng, gb, y + rb, rows, nr);
  }
}

#undef LOWBIT_QF

}  // namespace LOWBIT_Q_NS
