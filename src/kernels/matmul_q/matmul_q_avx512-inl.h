// AVX-512 kernels of matmul_q (see matmul_q.cc for the overall structure). Included twice into the AVX3 target
// namespace of matmul_q.cc (no include guard):
//   LOWBIT_Q_VNNI 0  AVX-512 F/BW/DQ/VL only: u8×s8 dots with vpmaddubsw + vpmaddwd (8-bit codes split into
//                    q & 0x7F and q & 0x80 so the int16 pair sums cannot saturate); bit planes unpacked by the
//                    portable code.
//   LOWBIT_Q_VNNI 1  + AVX512-VNNI, VBMI, GFNI (LOWBIT_Q_ATTR adds them to every function here): vpdpbusd;
//                    bit planes decoded in registers with vpermb + gf2p8affineqb.
// Highway 1.0.3's own AVX3_DL target is not used: its target string includes AVX-VNNI (the VEX encoding), and
// GCC then emits `{vex} vpdpbusd` for 256-bit dots (even auto-vectorized scalar loops), which faults on CPUs
// with AVX512-VNNI but no AVX-VNNI (Zen 4, Ice Lake).
//
// Codes are handled as "pairs": two consecutive 32-weight blocks = 64 codes in one zmm, natural order
// (byte j of the pair = code of column 64·i + j), except 4-bit codes in the dot form ("nibble order", see
// Src4). Activations xq of a token are in the same order, so the int32 lane l of a pair's dot covers 4
// columns of one block (natural order: lanes 0-7 the first block, 8-15 the second), and the per-lane
// activation scale vector is A8Acts::s8x[16 i .. 16 i + 16).
//
// Zen 4 as measured: one zmm vpdpbusd / FMA / vpermps / shuffle / zmm load per cycle each (vpdpbusd and FMA
// share a pipe pair), two zmm ALU ops per cycle in all; vpdpbusd needs >= 8 independent accumulators.

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

  SrcPlanes() = default;
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


// ---------------------------------------------------------------------------------------------------------
// Dot form: one row against kT <= 4 tokens t0 .. t0+kT-1. Each token's result is a vector whose lane sum,
// plus the m term, is the output. Each pair's int32 lanes must be converted to fp32 and scaled by their
// block's activation scale s (and by d); with one token, kU independent accumulator chains per token hide the
// 4-cycle FMA latency.

// For pair k of 8 (16 blocks' d in a vector): the block index of each int32 lane of the pair's dot.
alignas(64) constexpr int32_t kPairLanesNatural[8][16] = {
#define LOWBIT_ROW(k) {2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, \
                       2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1}
    LOWBIT_ROW(0), LOWBIT_ROW(1), LOWBIT_ROW(2), LOWBIT_ROW(3), LOWBIT_ROW(4), LOWBIT_ROW(5), LOWBIT_ROW(6), LOWBIT_ROW(7)};
#undef LOWBIT_ROW
alignas(64) constexpr int32_t kPairLanesNibble[8][16] = {
#define LOWBIT_ROW(k) {2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, \
                       2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1}
    LOWBIT_ROW(0), LOWBIT_ROW(1), LOWBIT_ROW(2), LOWBIT_ROW(3), LOWBIT_ROW(4), LOWBIT_ROW(5), LOWBIT_ROW(6), LOWBIT_ROW(7)};
#undef LOWBIT_ROW

// R rows × kT tokens at once: the rows share each token's xq and s8x loads (L1 delivers one zmm per cycle,
// which a single row would spend mostly on activations), and R·kT independent accumulators hide the FMA
// latency. Three ways to apply d:
//   group_size % 64 == 0, >= 4 pairs per group: a group accumulator per row and token, times d at the end;
//   group_size 64 or 128: d folded into the scale per pair, acc += cvt(P) · (s · d);
//   odd multiples of 32 (32, 96, ...): the same with d per lane (the pair's two blocks may need different d),
//     picked from 16 blocks' d (dblk) by a permute.
template <class Src, size_t R, size_t kT>
LOWBIT_QF void A8DotTile(const Src (&src_in)[R], size_t ng, size_t gb, const float* const (&d)[R],
                         const float* const (&dblk)[R], const A8Acts& a, size_t t0, __m512 (&result)[R][kT]) {
  constexpr bool k8 = Src::k8;
  // kU accumulator sets, so that at least 4 independent FMA chains run (latency 4): pair i adds into set
  // i % kU (loops unrolled by kU so that the index is a constant).
  constexpr size_t kU = R * kT >= 4 ? 1 : 4 / (R * kT);
  // Local copies: the compiler cannot tell that the stores below do not alias the inputs.
  Src src[R];
  for (size_t j = 0; j < R; ++j) src[j] = src_in[j];
  const size_t nb = src[0].nb, np = (nb + 1) / 2;
  const int8_t* xq[kT];
  const float* s8[kT];
  __m512 out[kU][R][kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s8[t] = a.s8x_t(t0 + t);
    for (size_t u = 0; u < kU; ++u)
      for (size_t j = 0; j < R; ++j) out[u][j][t] = _mm512_setzero_ps();
  }
  // acc += cvt(P_i) · (s · dv[j]) for pair i.
  const auto fold_step = [&](size_t i, const __m512 (&dv)[R], __m512 (&acc)[R][kT]) LOWBIT_Q_ATTR {
    CodeVec c[R];
    for (size_t j = 0; j < R; ++j) c[j] = PrepCodes<k8>(2 * i + 1 < nb ? src[j].pair(i) : src[j].tail(i));
    for (size_t t = 0; t < kT; ++t) {
      const __m512i x = _mm512_loadu_si512(xq[t] + 64 * i);
      const __m512 sv = _mm512_loadu_ps(s8[t] + 16 * i);
      for (size_t j = 0; j < R; ++j) {
        const __m512i p = DotAcc<k8>(c[j], x, _mm512_setzero_si512());
        acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(sv, dv[j]), acc[j][t]);
      }
    }
  };
  if (gb % 2 == 1) {
    // Lane l of a pair's dot belongs to block 2i + (l / 8) (natural order) or 2i + (l / 4) % 2 (nibble).
    const int32_t(*idx)[16] = Src::kNibble ? kPairLanesNibble : kPairLanesNatural;
    for (size_t i0 = 0; i0 < np; i0 += 8) {
      const size_t nbc = std::min<size_t>(16, nb - 2 * i0);
      const __mmask16 m = static_cast<__mmask16>((1u << nbc) - 1);
      __m512 d16[R];
      for (size_t j = 0; j < R; ++j) d16[j] = _mm512_maskz_loadu_ps(m, dblk[j] + 2 * i0);
      const size_t ke = std::min<size_t>(8, np - i0);
      for (size_t k = 0; k < 8; ++k) {
        if (k >= ke) break;
        const __m512i ix = _mm512_load_si512(idx[k]);
        __m512 dv[R];
        for (size_t j = 0; j < R; ++j) dv[j] = _mm512_permutexvar_ps(ix, d16[j]);
        fold_step(i0 + k, dv, out[k % kU]);
      }
    }
  } else if (gb <= 4) {
    const size_t shift = gb == 4 ? 1 : 0;
    for (size_t i0 = 0; i0 < np; i0 += kU) {
      for (size_t u = 0; u < kU; ++u) {
        const size_t i = i0 + u;
        if (i >= np) break;
        __m512 dv[R];
        for (size_t j = 0; j < R; ++j) dv[j] = _mm512_set1_ps(d[j][i >> shift]);
        fold_step(i, dv, out[u]);
      }
    }
  } else {
    const size_t pg = gb / 2;
    for (size_t g = 0; g < ng; ++g) {
      __m512 accg[kU][R][kT];
      for (size_t u = 0; u < kU; ++u)
        for (size_t j = 0; j < R; ++j)
          for (size_t t = 0; t < kT; ++t) accg[u][j][t] = _mm512_setzero_ps();
      for (size_t i0 = g * pg; i0 < (g + 1) * pg; i0 += kU) {
        for (size_t u = 0; u < kU; ++u) {
          const size_t i = i0 + u;
          if (i >= (g + 1) * pg) break;
          CodeVec c[R];
          for (size_t j = 0; j < R; ++j) c[j] = PrepCodes<k8>(src[j].pair(i));
          for (size_t t = 0; t < kT; ++t) {
            const __m512i x = _mm512_loadu_si512(xq[t] + 64 * i);
            const __m512 sv = _mm512_loadu_ps(s8[t] + 16 * i);
            for (size_t j = 0; j < R; ++j) {
              const __m512i p = DotAcc<k8>(c[j], x, _mm512_setzero_si512());
              accg[u][j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sv, accg[u][j][t]);
            }
          }
        }
      }
      for (size_t j = 0; j < R; ++j) {
        const __m512 dv = _mm512_set1_ps(d[j][g]);
        for (size_t t = 0; t < kT; ++t) {
          __m512 sum = accg[0][j][t];
          for (size_t u = 1; u < kU; ++u) sum = _mm512_add_ps(sum, accg[u][j][t]);
          out[0][j][t] = _mm512_fmadd_ps(sum, dv, out[0][j][t]);
        }
      }
    }
  }
  for (size_t j = 0; j < R; ++j)
    for (size_t t = 0; t < kT; ++t) {
      __m512 sum = out[0][j][t];
      for (size_t u = 1; u < kU; ++u) sum = _mm512_add_ps(sum, out[u][j][t]);
      result[j][t] = sum;
    }
}

// Lane sums of 4 vectors: {Σ v0, Σ v1, Σ v2, Σ v3}.
LOWBIT_QF __m128 Sum4(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
  const __m512 a = _mm512_add_ps(_mm512_unpacklo_ps(v0, v1), _mm512_unpackhi_ps(v0, v1));  // v0 v1 v0 v1 / chunk
  const __m512 b = _mm512_add_ps(_mm512_unpacklo_ps(v2, v3), _mm512_unpackhi_ps(v2, v3));  // v2 v3 v2 v3
  const __m512 c = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// The m term mf · Σ_g mv[g] · gsum[g] (mv = mins, mf = 1; symmetric: mv = d, mf = -2^(bits-1)) added as a
// vector, so that one lane sum per output remains.
LOWBIT_QF __m512 AddMTerm(__m512 v, const float* HWY_RESTRICT mv, float mf, const float* HWY_RESTRICT gsum,
                          size_t ng) {
  __m512 m = _mm512_setzero_ps();
  size_t g = 0;
  for (; g + 16 <= ng; g += 16) m = _mm512_fmadd_ps(_mm512_loadu_ps(mv + g), _mm512_loadu_ps(gsum + g), m);
  if (g < ng) {
    const __mmask16 k = static_cast<__mmask16>((1u << (ng - g)) - 1);
    m = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, mv + g), _mm512_maskz_loadu_ps(k, gsum + g), m);
  }
  return _mm512_fmadd_ps(m, _mm512_set1_ps(mf), v);
}

// Rows [r, r + nr) of a chunk whose d (and mins) were converted to floats already (dc, mc: [row][group];
// dbc: d per block for odd group lengths > 1), all tokens, R rows × kT tokens per tile.
template <class Src, size_t R, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8DotChunk(const PackedMatrix& W, const A8Acts& a, const Src& proto, size_t r,
                                            size_t nr, const float* dc, const float* mc, const float* dbc,
                                            const uint8_t* unpacked, float* HWY_RESTRICT y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows, nb = desc.n_blocks();
  const size_t rq = a.nbp * kPackBlock;  // bytes per unpacked row
  const float mf = desc.has_zeros ? 1.0f : -static_cast<float>(1 << (desc.bits - 1));
  const float* mvc = desc.has_zeros ? mc : dc;
  for (size_t i = 0; i < nr; i += R) {
    Src src[R];
    const float* d[R];
    const float* dblk[R];
    const float* mv[R];
    for (size_t j = 0; j < R; ++j) {
      src[j] = proto;
      src[j].p = unpacked ? unpacked + (i + j) * rq : W.row_codes(r + i + j);
      d[j] = dc + (i + j) * ng;
      mv[j] = mvc + (i + j) * ng;
      dblk[j] = gb == 1 ? d[j] : dbc + (i + j) * nb;
    }
    for (size_t t0 = 0; t0 < a.n_tokens; t0 += kT) {
      __m512 v[R][kT];
      A8DotTile<Src, R, kT>(src, ng, gb, d, dblk, a, t0, v);
      for (size_t t = 0; t < kT; ++t) {
        const float* gsum = a.gsum_t(t0 + t);
        for (size_t j = 0; j < R; ++j) v[j][t] = AddMTerm(v[j][t], mv[j], mf, gsum, ng);
        float* yt = y + (t0 + t) * rows + r + i;
        if constexpr (R == 4) {
          _mm_storeu_ps(yt, Sum4(v[0][t], v[1][t], v[2][t], v[3][t]));
        } else {
          for (size_t j = 0; j < R; ++j) yt[j] = _mm512_reduce_add_ps(v[j][t]);
        }
      }
    }
  }
}

template <class Src>
LOWBIT_Q_ATTR void A8DotRows(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* HWY_RESTRICT y,
                             const Src& proto, bool unpack) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, nb = a.nb, rq = a.nbp * kPackBlock;
  // Rows are processed in chunks whose scales are converted to floats in one pass.
  constexpr size_t kChunk = 64;
  thread_local Scratch<float> f_buf;
  thread_local Scratch<uint8_t> q_buf;
  const bool odd_blocks = gb % 2 == 1 && gb > 1;
  float* dc = f_buf.get(kChunk * (2 * ng + (odd_blocks ? nb : 0)));
  float* mc = dc + kChunk * ng;
  float* dbc = mc + kChunk * ng;
  uint8_t* q = unpack ? q_buf.get(kChunk * rq) : nullptr;
  for (size_t rc = r0; rc < r1; rc += kChunk) {
    const size_t nr = std::min(kChunk, r1 - rc);
    HalvesToFloats512(W.scales + rc * ng, nr * ng, dc);
    if (desc.has_zeros) HalvesToFloats512(W.mins + rc * ng, nr * ng, mc);
    if (odd_blocks) {
      for (size_t i = 0, b = 0; i < nr * ng; ++i)
        for (size_t k = 0; k < gb; ++k) dbc[b++] = dc[i];
    }
    if (unpack)
      for (size_t i = 0; i < nr; ++i) UnpackRow(desc, W.row_codes(rc + i), q + i * rq);
    // Tiles: 4 rows × 1 token when rows are short (≤ 512 bytes of codes: the 4 rows are one short stretch
    // of memory), 2 rows × 2 tokens, else 1 row × up to 4 tokens. The rows of a tile share the activation
    // loads, but with long rows 4 rows' interleaved 16–64-byte steps defeat the hardware prefetcher: from DRAM
    // 4 × 1 KiB rows ran 1.6× slower than one row at a time (software prefetching did not cure it), though
    // 25% faster from L2/L3. Decode reads from DRAM.
    const size_t n = a.n_tokens;
    size_t i = 0;
    if (n == 1 && desc.row_code_bytes() <= 512) {
      i = nr / 4 * 4;
      if (i) A8DotChunk<Src, 4, 1>(W, a, proto, rc, i, dc, mc, dbc, q, y);
    } else if (n == 2) {
      i = nr / 2 * 2;
      if (i) A8DotChunk<Src, 2, 2>(W, a, proto, rc, i, dc, mc, dbc, q, y);
    }
    if (i == nr) continue;
    const size_t off = i;
    const float* dci = dc + off * ng;
    const float* mci = mc + off * ng;
    const float* dbci = dbc + off * nb;
    const uint8_t* qi = q ? q + off * rq : nullptr;
    // Remaining rows one at a time; tokens in chunks of 4 and a remainder chunk.
    A8Acts a4 = a;
    const size_t n4 = n / 4 * 4;
    if (n4) {
      a4.n_tokens = n4;
      A8DotChunk<Src, 1, 4>(W, a4, proto, rc + off, nr - off, dci, mci, dbci, qi, y);
    }
    if (n > n4) {
      // The remainder tokens as their own A8Acts view (shifted pointers).
      const A8Acts ar = a.tokens(n4, n - n4);
      float* yr = y + n4 * desc.rows;
      switch (n - n4) {
        case 3: A8DotChunk<Src, 1, 3>(W, ar, proto, rc + off, nr - off, dci, mci, dbci, qi, yr); break;
        case 2: A8DotChunk<Src, 1, 2>(W, ar, proto, rc + off, nr - off, dci, mci, dbci, qi, yr); break;
        default: A8DotChunk<Src, 1, 1>(W, ar, proto, rc + off, nr - off, dci, mci, dbci, qi, yr); break;
      }
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
// WeightOnly dot form (fp32 math), R rows × kT tokens sharing the x loads; group_size % 32 == 0.
//   4-bit: per group a 16-entry table d·q + m of the row's dequantized values (one FMA), looked up with
//     vpermps straight from the zero-extended code bytes (vpermps reads only the low 4 bits of an index, so
//     the low nibble needs no mask; the high nibble one shift). Σ w·x directly, no separate m term.
//   Other widths: codes as bytes (8-bit: the packed row itself; else unpacked), converted to fp32, a group
//     accumulator scaled by d at the group's end, plus Σ_g m_g · Σ_{k in g} x_k.
// One row at a time (a single sequential stream: interleaving several rows' 16-byte steps measured up to 2×
// slower from L3), kT tokens; at least 4 accumulator chains per token (the FMA latency is 4 cycles).
template <bool k4, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void WODotChunk(const PackedMatrix& W, const WOActs& a, size_t t0, size_t r, size_t nr,
                                            const float* dc, const float* mc, const uint8_t* unpacked, size_t rq,
                                            float* HWY_RESTRICT y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gs = desc.group_size, rows = desc.rows, cols = desc.cols;
  const size_t gblocks = gs / kPackBlock, nb = cols / kPackBlock;
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const float* x[kT];
  const float* xg[kT];
  for (size_t t = 0; t < kT; ++t) {
    x[t] = a.x + (t0 + t) * cols;
    xg[t] = a.xg + (t0 + t) * ng;
  }
  for (size_t i = 0; i < nr; ++i) {
    const uint8_t* q = unpacked ? unpacked + i * rq : W.row_codes(r + i);
    const float* d = dc + i * ng;
    const float* m = mc + i * ng;
    __m512 acc[4][kT];
    for (size_t u = 0; u < 4; ++u)
      for (size_t t = 0; t < kT; ++t) acc[u][t] = _mm512_setzero_ps();
    if constexpr (k4) {
      // Two blocks per step (4 chains: low / high halves of each), each with its group's table.
      const auto block = [&](size_t b, __m512 table, size_t u) LOWBIT_Q_ATTR {
        const __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * b)));
        const __m512 wlo = _mm512_permutexvar_ps(z, table);
        const __m512 whi = _mm512_permutexvar_ps(_mm512_srli_epi32(z, 4), table);
        for (size_t t = 0; t < kT; ++t) {
          acc[u][t] = _mm512_fmadd_ps(wlo, _mm512_loadu_ps(x[t] + 32 * b), acc[u][t]);
          acc[u + 1][t] = _mm512_fmadd_ps(whi, _mm512_loadu_ps(x[t] + 32 * b + 16), acc[u + 1][t]);
        }
      };
      const auto table_of = [&](size_t g) LOWBIT_Q_ATTR {
        return _mm512_fmadd_ps(iota, _mm512_set1_ps(d[g]), _mm512_set1_ps(m[g]));
      };
      size_t g = 0, left = gblocks;  // group of block b, blocks left in it
      __m512 tab = table_of(0);
      size_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        const __m512 ta = tab;
        if (--left == 0 && ++g < ng) tab = table_of(g), left = gblocks;
        block(b, ta, 0);
        const __m512 tb = tab;
        if (--left == 0 && ++g < ng) tab = table_of(g), left = gblocks;
        block(b + 1, tb, 2);
      }
      if (b < nb) block(b, tab, 0);
    } else {
      // Per group two chains over 16-column steps (a group has an even number of them), scaled by d at the
      // group's end into one of two further chains.
      const auto group = [&](size_t g, size_t u) LOWBIT_Q_ATTR {
        __m512 g0[kT], g1[kT];
        for (size_t t = 0; t < kT; ++t) g0[t] = g1[t] = _mm512_setzero_ps();
        for (size_t k = g * gs; k < (g + 1) * gs; k += 32) {
          const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k))));
          const __m512 w1 =
              _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k + 16))));
          for (size_t t = 0; t < kT; ++t) {
            g0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + k), g0[t]);
            g1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + k + 16), g1[t]);
          }
        }
        const __m512 dv = _mm512_set1_ps(d[g]);
        for (size_t t = 0; t < kT; ++t) acc[u][t] = _mm512_fmadd_ps(_mm512_add_ps(g0[t], g1[t]), dv, acc[u][t]);
      };
      size_t g = 0;
      for (; g + 2 <= ng; g += 2) {
        group(g, 0);
        group(g + 1, 1);
      }
      if (g < ng) group(g, 0);
    }
    for (size_t t = 0; t < kT; ++t) {
      __m512 v = _mm512_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]), _mm512_add_ps(acc[2][t], acc[3][t]));
      if constexpr (!k4) v = AddMTerm(v, m, 1.0f, xg[t], ng);
      y[(t0 + t) * rows + r + i] = _mm512_reduce_add_ps(v);
    }
  }
}

template <bool k4>
LOWBIT_Q_ATTR void WODotRowsT(const PackedMatrix& W, const WOActs& a, size_t n_tokens, size_t r0, size_t r1,
                              float* y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), nb = desc.n_blocks(), rq = (nb + 1) / 2 * 64;
  const bool unpack = !k4 && desc.bits != 8;
  constexpr size_t kChunk = 64;
  thread_local Scratch<float> f_buf;
  thread_local Scratch<uint8_t> q_buf;
  float* dc = f_buf.get(2 * kChunk * ng);
  float* mc = dc + kChunk * ng;
  uint8_t* q = unpack ? q_buf.get(kChunk * rq) : nullptr;
  const float zero = -static_cast<float>(1 << (desc.bits - 1));
  for (size_t rc = r0; rc < r1; rc += kChunk) {
    const size_t nr = std::min(kChunk, r1 - rc);
    HalvesToFloats512(W.scales + rc * ng, nr * ng, dc);
    if (desc.has_zeros) {
      HalvesToFloats512(W.mins + rc * ng, nr * ng, mc);
    } else {
      for (size_t i = 0; i < nr * ng; i += 16) {
        const __mmask16 k = static_cast<__mmask16>(nr * ng - i >= 16 ? 0xFFFFu : (1u << (nr * ng - i)) - 1);
        _mm512_mask_storeu_ps(mc + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dc + i), _mm512_set1_ps(zero)));
      }
    }
    if (unpack)
      for (size_t i = 0; i < nr; ++i) UnpackRow(desc, W.row_codes(rc + i), q + i * rq);
    size_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) WODotChunk<k4, 4>(W, a, t, rc, nr, dc, mc, q, rq, y);
    switch (n_tokens - t) {
      case 3: WODotChunk<k4, 3>(W, a, t, rc, nr, dc, mc, q, rq, y); break;
      case 2: WODotChunk<k4, 2>(W, a, t, rc, nr, dc, mc, q, rq, y); break;
      case 1: WODotChunk<k4, 1>(W, a, t, rc, nr, dc, mc, q, rq, y); break;
      default: break;
    }
  }
}

// Rows [r0, r1) × all tokens (few), WeightOnly; group_size % 32 == 0.
LOWBIT_Q_ATTR void WODotRange(const PackedMatrix& W, const WOActs& a, size_t n_tokens, size_t r0, size_t r1,
                              float* y) {
  if (W.desc.bits == 4)
    WODotRowsT<true>(W, a, n_tokens, r0, r1, y);
  else
    WODotRowsT<false>(W, a, n_tokens, r0, r1, y);
}

// ---------------------------------------------------------------------------------------------------------
// Outer-product form (prefill). A panel holds kPanelRows rows' codes interleaved per dword:
//   panel[(b·8 + kd)·32 + r] = codes of row r, columns 32b + 4kd .. 32b + 4kd + 3   (4 bytes)
// so one zmm load gives 16 rows × 4 columns, and vpdpbusd against a broadcast dword of xq (4 columns of one
// token) accumulates 16 rows at once. Dp/Mp hold the rows' d and mz per group: Dp[g·32 + r].

constexpr size_t kPanelRows = 32;

// Rows rb .. rb+31 (nr of them real) × tokens t0 .. t0+kT-1, over all groups; y points at y[t0][rb].
// Symmetric weights (kSym) fold the m term into the integer dots: Σ q·xq − 2^(bits−1)·Σ xq, by starting each
// block's accumulators at −2^(bits−1)·isum (zshift = bits − 1) instead of 0.
template <bool k8, bool kSym, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8OuterTile(const uint32_t* HWY_RESTRICT panel, const float* HWY_RESTRICT Dp,
                                             const float* HWY_RESTRICT Mp, const A8Acts& a, size_t t0, size_t ng,
                                             size_t gb, int zshift, float* HWY_RESTRICT y, size_t ldy,
                                             size_t nr) {
  const int8_t* xq[kT];
  const float* s[kT];
  const int32_t* isum[kT];
  const float* gsum[kT];
  __m512 acc[2][kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    isum[t] = a.isum_t(t0 + t);
    gsum[t] = a.gsum_t(t0 + t);
    acc[0][t] = acc[1][t] = _mm512_setzero_ps();
  }
  for (size_t g = 0; g < ng; ++g) {
    __m512 accg[2][kT];
    for (size_t t = 0; t < kT; ++t) accg[0][t] = accg[1][t] = _mm512_setzero_ps();
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      __m512i P[2][kT];
      for (size_t t = 0; t < kT; ++t)
        P[0][t] = P[1][t] = kSym ? _mm512_set1_epi32(-(isum[t][b] << zshift)) : _mm512_setzero_si512();
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
        if constexpr (!kSym) acc[j][t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(gsum[t][g]), acc[j][t]);
      }
    }
  }
  for (size_t j = 0; j < 2; ++j) {
    const size_t n = nr > 16 * j ? std::min<size_t>(16, nr - 16 * j) : 0;
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    for (size_t t = 0; t < kT; ++t) _mm512_mask_storeu_ps(y + t * ldy + 16 * j, m, acc[j][t]);
  }
}

template <bool k8, bool kSym>
LOWBIT_Q_ATTR void A8OuterTokens(const uint32_t* panel, const float* Dp, const float* Mp, const A8Acts& a,
                                 size_t ng, size_t gb, int zshift, float* y, size_t rows, size_t nr) {
  size_t t = 0;
  for (; t + 4 <= a.n_tokens; t += 4)
    A8OuterTile<k8, kSym, 4>(panel, Dp, Mp, a, t, ng, gb, zshift, y + t * rows, rows, nr);
  switch (a.n_tokens - t) {
    case 3:
      A8OuterTile<k8, kSym, 3>(panel, Dp, Mp, a, t, ng, gb, zshift, y + t * rows, rows, nr);
      break;
    case 2:
      A8OuterTile<k8, kSym, 2>(panel, Dp, Mp, a, t, ng, gb, zshift, y + t * rows, rows, nr);
      break;
    case 1:
      A8OuterTile<k8, kSym, 1>(panel, Dp, Mp, a, t, ng, gb, zshift, y + t * rows, rows, nr);
      break;
    default:
      break;
  }
}

// In-place transpose of a 16×16 matrix of dwords (r[m] = row m).
LOWBIT_QF void Transpose16x16(__m512i (&r)[16]) {
  __m512i t[16], u[16];
  for (size_t p = 0; p < 8; ++p) {  // rows 2p, 2p+1 interleaved per 128-bit lane
    t[2 * p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
  }
  for (size_t q = 0; q < 4; ++q) {  // u[4q + e], lane L: rows 4q .. 4q+3 at column 4L + e
    u[4 * q + 0] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (size_t e = 0; e < 4; ++e) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88);  // lanes 0, 2 of quads 0, 1
    const __m512i y0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xDD);  // lanes 1, 3
    const __m512i x1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xDD);
    r[0 + e] = _mm512_shuffle_i32x4(x0, x1, 0x88);   // column 4·0 + e
    r[8 + e] = _mm512_shuffle_i32x4(x0, x1, 0xDD);   // column 4·2 + e
    r[4 + e] = _mm512_shuffle_i32x4(y0, y1, 0x88);   // column 4·1 + e
    r[12 + e] = _mm512_shuffle_i32x4(y0, y1, 0xDD);  // column 4·3 + e
  }
}

// Rows [r0, r1), all tokens; group_size % 32 == 0.
LOWBIT_Q_ATTR void A8OuterRange(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  const size_t nbp = a.nbp, nd = nbp * 8, rq = nbp * kPackBlock;  // dwords / bytes per unpacked row
  thread_local Scratch<uint32_t> panel_buf;
  thread_local Scratch<uint8_t> row_buf;
  thread_local Scratch<float> f_buf;
  uint32_t* panel = panel_buf.get(nd * kPanelRows);
  uint8_t* rowq = row_buf.get(kPanelRows * rq);
  float* Dp = f_buf.get(2 * ng * kPanelRows + 2 * ng);  // Dp, Mp, then one row's d, mz
  float* Mp = Dp + ng * kPanelRows;
  float* d = Mp + ng * kPanelRows;
  float* mz = d + ng;
  const bool k8 = !LOWBIT_Q_VNNI && desc.bits == 8;
  for (size_t rb = r0; rb < r1; rb += kPanelRows) {
    const size_t nr = std::min(kPanelRows, r1 - rb);
    for (size_t i = 0; i < kPanelRows; ++i) {
      if (i < nr) {
        UnpackRow(desc, W.row_codes(rb + i), rowq + i * rq);
        HalvesToFloats512(W.scales + (rb + i) * ng, ng, d);
        for (size_t g = 0; g < ng; ++g) Dp[g * kPanelRows + i] = d[g];
        if (desc.has_zeros) {  // (symmetric: the m term is folded into the integer dots)
          HalvesToFloats512(W.mins + (rb + i) * ng, ng, mz);
          for (size_t g = 0; g < ng; ++g) Mp[g * kPanelRows + i] = mz[g];
        }
      } else {  // rows past the range: zero codes and scales, results not stored
        std::memset(rowq + i * rq, 0, rq);
        for (size_t g = 0; g < ng; ++g) Dp[g * kPanelRows + i] = Mp[g * kPanelRows + i] = 0.0f;
      }
    }
    // Interleave: 16 rows × 16 dwords at a time, transposed in registers.
    for (size_t h = 0; h < kPanelRows / 16; ++h) {
      for (size_t kd0 = 0; kd0 < nd; kd0 += 16) {
        __m512i m[16];
        for (size_t i = 0; i < 16; ++i) m[i] = _mm512_loadu_si512(rowq + (16 * h + i) * rq + 4 * kd0);
        Transpose16x16(m);
        for (size_t k = 0; k < 16; ++k) _mm512_storeu_si512(panel + (kd0 + k) * kPanelRows + 16 * h, m[k]);
      }
    }
    const int zs = desc.bits - 1;
    if (desc.has_zeros) {
      if (k8)
        A8OuterTokens<true, false>(panel, Dp, Mp, a, ng, gb, zs, y + rb, rows, nr);
      else
        A8OuterTokens<false, false>(panel, Dp, Mp, a, ng, gb, zs, y + rb, rows, nr);
    } else {
      if (k8)
        A8OuterTokens<true, true>(panel, Dp, Mp, a, ng, gb, zs, y + rb, rows, nr);
      else
        A8OuterTokens<false, true>(panel, Dp, Mp, a, ng, gb, zs, y + rb, rows, nr);
    }
  }
}

#if LOWBIT_Q_VNNI
// ---------------------------------------------------------------------------------------------------------
// The codes of columns 4kd .. 4kd+3 of one block of a tile (dword lane r = row r), one byte each, from the
// block's chunks (quant/row_tiles.h): a load, a shift and an AND; 3-, 5- and 6-bit codes OR in their high
// bits, shifted into place. (The shifts are per 16-bit lane: the bits a byte receives from its neighbour always
// land outside the mask.)
template <int kBits, int kd>
LOWBIT_QF __m512i TileGroup(const uint8_t* blk) {
  if constexpr (kBits == 8) {
    return _mm512_loadu_si512(blk + 64 * kd);
  } else if constexpr (kBits >= 4) {
    const __m512i v = _mm512_loadu_si512(blk + 64 * (kd % 4));
    __m512i c = _mm512_and_si512(kd < 4 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
    if constexpr (kBits == 5) {  // bit kd of each byte of chunk 4 -> bit 4
      const __m512i h = _mm512_loadu_si512(blk + 256);
      const __m512i hb = kd >= 4 ? _mm512_srli_epi16(h, kd - 4) : _mm512_slli_epi16(h, 4 - kd);
      c = _mm512_or_si512(c, _mm512_and_si512(hb, _mm512_set1_epi8(0x10)));
    } else if constexpr (kBits == 6) {  // bits 2(kd%4), +1 of each byte of chunk 4 + kd/4 -> bits 4, 5
      constexpr int s = 2 * (kd % 4);
      const __m512i h = _mm512_loadu_si512(blk + 256 + 64 * (kd / 4));
      const __m512i hb = s >= 4 ? _mm512_srli_epi16(h, s - 4) : _mm512_slli_epi16(h, 4 - s);
      c = _mm512_or_si512(c, _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
    }
    return c;
  } else {
    const __m512i v = _mm512_loadu_si512(blk + 64 * (kd / 4));
    __m512i c = _mm512_and_si512(_mm512_srli_epi16(v, 2 * (kd % 4)), _mm512_set1_epi8(0x03));
    if constexpr (kBits == 3) {
      const __m512i h = _mm512_loadu_si512(blk + 128);  // bit kd of each byte, moved to bit 2
      const __m512i hb = kd >= 2 ? _mm512_srli_epi16(h, kd - 2) : _mm512_slli_epi16(h, 2 - kd);
      c = _mm512_or_si512(c, _mm512_and_si512(hb, _mm512_set1_epi8(0x04)));
    }
    return c;
  }
}

// Runtime kd (the prefill panel build, not a hot loop).
template <int kBits, int kd = 0>
LOWBIT_QF __m512i TileGroupAt(const uint8_t* blk, int at) {
  if constexpr (kd == 7) {
    return TileGroup<kBits, 7>(blk);
  } else {
    return at == kd ? TileGroup<kBits, kd>(blk) : TileGroupAt<kBits, kd + 1>(blk, at);
  }
}

// Row-tile decode (quant/row_tiles.h): each 64-byte chunk of a tile is one zmm whose dword lane r holds 4
// columns' codes of row r, so a vpdpbusd against a broadcast dword of one token's xq advances 16 rows × 4
// columns straight from the loaded weights. Outputs come out 16 rows per vector: no horizontal sums, no panel
// build, and one sequential stream of weights per tile. One tile × kT tokens per call; with fewer than 4 tokens
// each block's dots alternate between two accumulator chains. pf: non-temporal prefetch distance in bytes
// (KernelTuning::decode_prefetch_bytes), 0 = none. (Why the hint helps is not settled: prefetching the
// activations as well changed nothing, so it is not only that they stay in L1.)
template <int kBits, bool kSym, size_t kT>
LOWBIT_Q_ATTR HWY_NOINLINE void A8TiledTile(const uint8_t* HWY_RESTRICT tile, const RowTileGeometry& geo,
                                             const A8Acts& a, size_t t0, size_t gb, int zshift, size_t pf,
                                             float* HWY_RESTRICT y, size_t ldy) {
  constexpr size_t kC = kT >= 4 ? 1 : 2;      // chains per token
  constexpr size_t kBlockBytes = 64 * kBits;  // one block of 16 rows
  const int8_t* xq[kT];
  const float* s[kT];
  const int32_t* isum[kT];
  const float* gsum[kT];
  __m512 acc[kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    isum[t] = a.isum_t(t0 + t);
    gsum[t] = a.gsum_t(t0 + t);
    acc[t] = _mm512_setzero_ps();
  }
  const auto xword = [&](size_t t, size_t off) LOWBIT_Q_ATTR {
    int32_t w;
    std::memcpy(&w, xq[t] + off, 4);
    return _mm512_set1_epi32(w);
  };
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  const size_t ng = geo.n_groups, gc = geo.group_codes;
  constexpr size_t kUnit = kSym ? 2 : 1;  // geo.unit_groups, known here at compile time (no divisions)
  for (size_t g = 0; g < ng; ++g) {
    __m512 accg[kT];
    for (size_t t = 0; t < kT; ++t) accg[t] = _mm512_setzero_ps();
    const size_t u0 = g & ~(kUnit - 1);  // the unit's first group
    const uint8_t* unit = tile + u0 * gc + u0 / kUnit * 64;
    const uint8_t* gp = unit + (g - u0) * gc - g * gb * kBlockBytes;  // + b · kBlockBytes: block b
    const uint8_t* sl = unit + std::min(kUnit, ng - u0) * gc + (g - u0) * 32;  // = tile + geo.scales_offset(g)
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      __m512i P[kC][kT];
      for (size_t t = 0; t < kT; ++t) {
        P[0][t] = kSym ? _mm512_set1_epi32(-(isum[t][b] << zshift)) : _mm512_setzero_si512();
        if constexpr (kC == 2) P[kC - 1][t] = _mm512_setzero_si512();
      }
      const uint8_t* blk = gp + b * kBlockBytes;
      if (pf)  // (lines past the end of the matrix: prefetches never fault)
        for (size_t l = 0; l < kBlockBytes; l += 64)
          _mm_prefetch(reinterpret_cast<const char*>(blk + pf + l), _MM_HINT_NTA);
      if constexpr (kBits == 4) {
        // Each chunk once for both nibble halves (TileGroup would load it per half).
        for (size_t k = 0; k < 4; ++k) {
          const __m512i v = _mm512_loadu_si512(blk + 64 * k);
          const __m512i lo = _mm512_and_si512(v, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
          for (size_t t = 0; t < kT; ++t) {
            P[0][t] = _mm512_dpbusd_epi32(P[0][t], lo, xword(t, b * kPackBlock + 4 * k));
            P[kC - 1][t] = _mm512_dpbusd_epi32(P[kC - 1][t], hi, xword(t, b * kPackBlock + 16 + 4 * k));
          }
        }
      } else {
        [&]<size_t... kd>(std::index_sequence<kd...>) LOWBIT_Q_ATTR {
          (
              [&] {
                const __m512i c = TileGroup<kBits, int(kd)>(blk);
                for (size_t t = 0; t < kT; ++t)
                  P[kd % kC][t] = _mm512_dpbusd_epi32(P[kd % kC][t], c, xword(t, b * kPackBlock + 4 * kd));
              }(),
              ...);
        }(std::make_index_sequence<8>{});
      }
      for (size_t t = 0; t < kT; ++t) {
        __m512i p = P[0][t];
        if constexpr (kC == 2) p = _mm512_add_epi32(p, P[1][t]);
        accg[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(s[t][b]), accg[t]);
      }
    }
    const auto* dh = reinterpret_cast<const __m256i*>(sl);
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(dh));
    __m512 mv = dv;
    if constexpr (!kSym) mv = _mm512_cvtph_ps(_mm256_loadu_si256(dh + 1));
    for (size_t t = 0; t < kT; ++t) {
      acc[t] = _mm512_fmadd_ps(accg[t], dv, acc[t]);
      if constexpr (!kSym) acc[t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(gsum[t][g]), acc[t]);
    }
  }
  for (size_t t = 0; t < kT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

template <int kBits, bool kSym>
LOWBIT_Q_ATTR void A8TiledDotT(const PackedMatrix& W, const A8Acts& a, size_t tile0, size_t tile1, size_t pf,
                               float* y) {
  const PackedDesc& desc = W.desc;
  const RowTileGeometry geo(desc);
  const size_t tb = geo.tile_bytes(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  const int zs = desc.bits - 1;
  for (size_t i = tile0; i < tile1; ++i) {
    const uint8_t* tile = W.tiles + i * tb;
    float* yi = y + i * kTileRows;
    size_t t = 0;
    for (; t + 4 <= a.n_tokens; t += 4)
      A8TiledTile<kBits, kSym, 4>(tile, geo, a, t, gb, zs, pf, yi + t * rows, rows);
    switch (a.n_tokens - t) {
      case 3: A8TiledTile<kBits, kSym, 3>(tile, geo, a, t, gb, zs, pf, yi + t * rows, rows); break;
      case 2: A8TiledTile<kBits, kSym, 2>(tile, geo, a, t, gb, zs, pf, yi + t * rows, rows); break;
      case 1: A8TiledTile<kBits, kSym, 1>(tile, geo, a, t, gb, zs, pf, yi + t * rows, rows); break;
      default: break;
    }
  }
}

// Decode (few tokens): tiles [tile0, tile1), multiplied straight from the tiles.
LOWBIT_Q_ATTR void A8TiledDotRange(const PackedMatrix& W, const A8Acts& a, size_t tile0, size_t tile1, size_t pf,
                                   float* y) {
  const bool sym = !W.desc.has_zeros;
  switch (W.desc.bits) {
    // (Prefetching is for 4-bit tiles only: with it, 2-bit decode measured +0.7-2.7%, 3-bit -2.4%, 8-bit -5-16%.)
    case 2: return sym ? A8TiledDotT<2, true>(W, a, tile0, tile1, 0, y) : A8TiledDotT<2, false>(W, a, tile0, tile1, 0, y);
    case 3: return sym ? A8TiledDotT<3, true>(W, a, tile0, tile1, 0, y) : A8TiledDotT<3, false>(W, a, tile0, tile1, 0, y);
    case 4: return sym ? A8TiledDotT<4, true>(W, a, tile0, tile1, pf, y) : A8TiledDotT<4, false>(W, a, tile0, tile1, pf, y);
    case 5: return sym ? A8TiledDotT<5, true>(W, a, tile0, tile1, 0, y) : A8TiledDotT<5, false>(W, a, tile0, tile1, 0, y);
    case 6: return sym ? A8TiledDotT<6, true>(W, a, tile0, tile1, 0, y) : A8TiledDotT<6, false>(W, a, tile0, tile1, 0, y);
    default: return sym ? A8TiledDotT<8, true>(W, a, tile0, tile1, 0, y) : A8TiledDotT<8, false>(W, a, tile0, tile1, 0, y);
  }
}

// Prefill: two tiles at a time are expanded into the outer-product panel (one byte per code, the layout of
// A8OuterTile above: 4-bit chunks split into their low and high nibbles, scales to floats), once per token
// block, and multiplied with A8OuterTile, whose inner loop then does nothing but vpdpbusd (decoding in that
// loop cost 15-30% at 4 tokens per register tile). Tiles [tile0, tile1), tile0 even.
LOWBIT_Q_ATTR void A8TiledOuterRange(const PackedMatrix& W, const A8Acts& a, size_t tile0, size_t tile1, float* y) {
  const PackedDesc& desc = W.desc;
  const RowTileGeometry geo(desc);
  const size_t tb = geo.tile_bytes();
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, nb = desc.n_blocks(), rows = desc.rows;
  const size_t bb = 16 * desc.block_bytes();  // bytes of one block of a tile
  thread_local Scratch<uint32_t> panel_buf;
  thread_local Scratch<float> f_buf;
  uint32_t* panel = panel_buf.get(nb * 8 * kPanelRows);
  float* Dp = f_buf.get(2 * ng * kPanelRows);
  float* Mp = Dp + ng * kPanelRows;
  for (size_t i = tile0; i < tile1; i += 2) {
    const size_t nt = std::min<size_t>(2, tile1 - i);  // an odd last tile: the second half stays zero
    for (size_t h = 0; h < 2; ++h) {
      if (h >= nt) {  // no such tile: zero codes and scales for its rows (results not stored)
        for (size_t b = 0; b < nb * 8; ++b) _mm512_storeu_si512(panel + b * kPanelRows + 16 * h, _mm512_setzero_si512());
        for (size_t g = 0; g < ng; ++g) {
          _mm512_storeu_ps(Dp + g * kPanelRows + 16 * h, _mm512_setzero_ps());
          _mm512_storeu_ps(Mp + g * kPanelRows + 16 * h, _mm512_setzero_ps());
        }
        continue;
      }
      const uint8_t* tile = W.tiles + (i + h) * tb;
      for (size_t g = 0; g < ng; ++g) {
        const uint8_t* blk = tile + geo.group_offset(g);
        for (size_t b = g * gb; b < (g + 1) * gb; ++b, blk += bb) {
          uint32_t* pb = panel + b * 8 * kPanelRows + 16 * h;
          for (size_t kd = 0; kd < 8; ++kd) {
            __m512i v;
            switch (desc.bits) {
              case 2: v = TileGroupAt<2>(blk, int(kd)); break;
              case 3: v = TileGroupAt<3>(blk, int(kd)); break;
              case 4: v = TileGroupAt<4>(blk, int(kd)); break;
              case 5: v = TileGroupAt<5>(blk, int(kd)); break;
              case 6: v = TileGroupAt<6>(blk, int(kd)); break;
              default: v = TileGroupAt<8>(blk, int(kd)); break;
            }
            _mm512_storeu_si512(pb + kd * kPanelRows, v);
          }
        }
      }
      for (size_t g = 0; g < ng; ++g) {
        const auto* dh = reinterpret_cast<const __m256i*>(tile + geo.scales_offset(g));
        _mm512_storeu_ps(Dp + g * kPanelRows + 16 * h, _mm512_cvtph_ps(_mm256_loadu_si256(dh)));
        if (desc.has_zeros)
          _mm512_storeu_ps(Mp + g * kPanelRows + 16 * h, _mm512_cvtph_ps(_mm256_loadu_si256(dh + 1)));
      }
    }
    const int zs = desc.bits - 1;
    float* yi = y + i * kTileRows;
    const size_t nr = nt * kTileRows;
    if (desc.has_zeros)
      A8OuterTokens<false, false>(panel, Dp, Mp, a, ng, gb, zs, yi, rows, nr);
    else
      A8OuterTokens<false, true>(panel, Dp, Mp, a, ng, gb, zs, yi, rows, nr);
  }
}
#endif  // LOWBIT_Q_VNNI

#undef LOWBIT_QF

}  // namespace LOWBIT_Q_NS
