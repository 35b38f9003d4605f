// AVX2 kernels of matmul_q (see matmul_q.cc): the a8 dot form with one 32-weight block per ymm. u8 × s8 dots
// use vpmaddubsw + vpmaddwd (8-bit codes split into q & 0x7F and q & 0x80 so the int16 pair sums cannot
// saturate). Included into the AVX2 target namespace of matmul_q.cc.

namespace avx2 {

struct CodeVec {
  __m256i a, b;  // the codes (a), or for 8-bit codes: a = q & 0x7F, b = q & 0x80
};

template <bool k8>
HWY_INLINE CodeVec PrepCodes(__m256i c) {
  if constexpr (k8) {
    return {_mm256_and_si256(c, _mm256_set1_epi8(0x7F)), _mm256_and_si256(c, _mm256_set1_epi8(char(0x80)))};
  } else {
    return {c, c};
  }
}

// Σ over the 4 bytes of each int32 lane of c·x
template <bool k8>
HWY_INLINE __m256i Dot(const CodeVec& c, __m256i x) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(c.a, x), ones);
  if constexpr (k8) p = _mm256_add_epi32(p, _mm256_madd_epi16(_mm256_maddubs_epi16(c.b, x), ones));
  return p;
}

HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <bool k8_>
struct Src8 {  // one byte per code (8-bit codes, or a row unpacked by other code with k8 = false)
  static constexpr bool k8 = k8_;
  const uint8_t* p = nullptr;
  HWY_INLINE __m256i block(size_t b) const {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * b));
  }
};

struct Src4 {  // 16 bytes per block, byte j = q_j | q_{j+16} << 4
  static constexpr bool k8 = false;
  const uint8_t* p = nullptr;
  HWY_INLINE __m256i block(size_t b) const {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * b));
    const __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(z, _mm256_set1_epi8(0x0F));
  }
};

HWY_INLINE float MTerm(const float* HWY_RESTRICT mz, const float* HWY_RESTRICT gsum, size_t ng) {
  __m256 v = _mm256_setzero_ps();
  size_t g = 0;
  for (; g + 8 <= ng; g += 8) v = _mm256_fmadd_ps(_mm256_loadu_ps(mz + g), _mm256_loadu_ps(gsum + g), v);
  float sum = HSum(v);
  for (; g < ng; ++g) sum += mz[g] * gsum[g];
  return sum;
}

template <class Src, size_t kT>
HWY_NOINLINE void A8DotRow(const Src& src, size_t ng, size_t gb, const float* HWY_RESTRICT d,
                           const float* HWY_RESTRICT mz, const A8Acts& a, size_t t0, float* HWY_RESTRICT y,
                           size_t ldy) {
  constexpr bool k8 = Src::k8;
  const int8_t* xq[kT];
  const float* s[kT];
  __m256 acc[kT];
  for (size_t t = 0; t < kT; ++t) {
    xq[t] = a.xq_t(t0 + t);
    s[t] = a.s_t(t0 + t);
    acc[t] = _mm256_setzero_ps();
  }
  for (size_t g = 0; g < ng; ++g) {
    __m256 accg[kT];
    for (size_t t = 0; t < kT; ++t) accg[t] = _mm256_setzero_ps();
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      const CodeVec c = PrepCodes<k8>(src.block(b));
      for (size_t t = 0; t < kT; ++t) {
        const __m256i p = Dot<k8>(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + 32 * b)));
        accg[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s[t][b]), accg[t]);
      }
    }
    const __m256 dv = _mm256_set1_ps(d[g]);
    for (size_t t = 0; t < kT; ++t) acc[t] = _mm256_fmadd_ps(accg[t], dv, acc[t]);
  }
  for (size_t t = 0; t < kT; ++t) y[t * ldy] = HSum(acc[t]) + MTerm(mz, a.gsum_t(t0 + t), ng);
}

template <class Src>
void A8DotRows(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* HWY_RESTRICT y, Src src,
               bool unpack) {
  const PackedDesc& desc = W.desc;
  const size_t ng = desc.n_groups(), gb = desc.group_size / kPackBlock, rows = desc.rows;
  thread_local Scratch<float> f_buf;
  thread_local Scratch<uint8_t> q_buf;
  float* d = f_buf.get(2 * ng);
  float* mz = d + ng;
  uint8_t* q = unpack ? q_buf.get(a.nbp * kPackBlock) : nullptr;
  for (size_t r = r0; r < r1; ++r) {
    if (unpack) {
      UnpackRowGeneric(desc, W.row_codes(r), q);
      src.p = q;
    } else {
      src.p = W.row_codes(r);
    }
    RowScales(W, r, d, mz);
    size_t t = 0;
    for (; t + 4 <= a.n_tokens; t += 4) A8DotRow<Src, 4>(src, ng, gb, d, mz, a, t, y + t * rows + r, rows);
    switch (a.n_tokens - t) {
      case 3:
        A8DotRow<Src, 3>(src, ng, gb, d, mz, a, t, y + t * rows + r, rows);
        break;
      case 2:
        A8DotRow<Src, 2>(src, ng, gb, d, mz, a, t, y + t * rows + r, rows);
        break;
      case 1:
        A8DotRow<Src, 1>(src, ng, gb, d, mz, a, t, y + t * rows + r, rows);
        break;
      default:
        break;
    }
  }
}

// Rows [r0, r1), all tokens; group_size % 32 == 0.
void A8DotRange(const PackedMatrix& W, const A8Acts& a, size_t r0, size_t r1, float* y) {
  switch (W.desc.bits) {
    case 8:
      return A8DotRows(W, a, r0, r1, y, Src8<true>{}, false);
    case 4:
      return A8DotRows(W, a, r0, r1, y, Src4{}, false);
    default:
      return A8DotRows(W, a, r0, r1, y, Src8<false>{}, true);
  }
}

}  // namespace avx2
