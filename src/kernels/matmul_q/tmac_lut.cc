// T-MAC-style table-lookup decode (see tmac_lut.h for the layout and the tables).
//
// Compiled for the x86-64 baseline; the kernel functions carry a target attribute (AVX-512 F/BW/VL/DQ + VBMI +
// VNNI) and run only after lut_kernel_available() checked the CPU, as matmul_q's VNNI kernels (UseVnni).
//
// Inner loop per tile and block (16 rows × 32 columns), bits = B:
//   B code loads; per chunk 1 vpternlogd (low nibble | e<<4) and 1 vpsrlw + 1 vpternlogd (high nibble);
//   per quad (2): B vpermb lookups into TL tables and B into TH tables, (B >= 2) 2 vpaddb merging planes 0 and 1,
//   then 2 vpdpbusd (3-bit: 4, plane 2 widened on its own); per block 1 vpaddd + vcvtdq2ps + vfmadd.
//   Tables: 2·QuadTables(B) zmm loads per block (8 for 2 and 3 bits), shared by the kR (4) tiles done together.
#include "kernels/matmul_q/tmac_lut.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/half.h"
#include "kernels/matmul_q/matmul_q.h"
#include "kernels/tuning.h"
#include "lowbit/error.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWBIT_LUT_X86 1
#include <immintrin.h>
// GCC 12 warns about the self-initialised `__Y` of _mm512_undefined_*() inside the intrinsics (a false positive:
// those lanes are never read), once per use in functions with a target attribute.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define LOWBIT_LUT_X86 0
#endif

namespace lowbit::kernels {

bool lut_tiles_fit(const PackedDesc& d) {
  return d.act == ActivationMode::DynamicInt8 && d.bits >= 1 && d.bits <= 3 && d.group_size % kPackBlock == 0 &&
         d.rows % kLutTileRows == 0;
}

size_t lut_tile_code_bytes(const PackedDesc& d) { return d.n_blocks() * 64 * static_cast<size_t>(d.bits); }

size_t lut_tile_bytes(const PackedDesc& d) {
  return lut_tile_code_bytes(d) + d.n_groups() * kLutTileRows * 2 * (d.has_zeros ? 2 : 1);
}

size_t lut_tiles_bytes(const PackedDesc& d) { return d.rows / kLutTileRows * lut_tile_bytes(d); }

void build_lut_tiles(const PackedMatrix& m, size_t t0, size_t t1, uint8_t* out) {
  const PackedDesc& d = m.desc;
  if (!lut_tiles_fit(d)) fail("build_lut_tiles: a matrix without LUT tiles ({} bits)", d.bits);
  const size_t nb = d.n_blocks(), ng = d.n_groups(), tb = lut_tile_bytes(d), cb = lut_tile_code_bytes(d);
  const size_t B = static_cast<size_t>(d.bits);
  std::vector<uint8_t> q(nb * kPackBlock);
  for (size_t t = t0; t < t1; ++t) {
    uint8_t* tile = out + t * tb;
    std::memset(tile, 0, cb);
    for (size_t r = 0; r < kLutTileRows; ++r) {
      const size_t row = t * kLutTileRows + r;
      unpack_row_codes(d, m.row_codes(row), q.data());  // the padding (cols % 32) is zero
      for (size_t b = 0; b < nb; ++b)
        for (size_t p = 0; p < B; ++p)
          for (size_t j = 0; j < kPackBlock; ++j) {
            const size_t c = j / 16, e = (j % 16) / 4, i = j % 4;
            const uint8_t bit = (q[b * kPackBlock + j] >> p) & 1;
            tile[(b * B + p) * 64 + 4 * r + e] |= static_cast<uint8_t>(bit << (4 * c + i));
          }
    }
    auto* dd = reinterpret_cast<uint16_t*>(tile + cb);
    auto* mm = dd + ng * kLutTileRows;
    for (size_t g = 0; g < ng; ++g)
      for (size_t r = 0; r < kLutTileRows; ++r) {
        const size_t row = t * kLutTileRows + r;
        dd[g * kLutTileRows + r] = m.scales[row * ng + g];
        if (d.has_zeros) mm[g * kLutTileRows + r] = m.mins[row * ng + g];
      }
  }
}

#if LOWBIT_LUT_X86

bool lut_kernel_available() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni");
  return has;
}

namespace {

#define LOWBIT_LUT_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni")))
#define LOWBIT_LUT_INLINE inline __attribute__((always_inline)) LOWBIT_LUT_ATTR

// Tables per quad: TL and TH for planes 0 and 1 (×1, ×2); plane 2 reuses plane 0's (its ×4 is in vpdpbusd's
// multipliers), which keeps a 2048-column token's tables at 32 KiB.
constexpr size_t QuadTables(int bits) { return bits == 1 ? 2 : 4; }

// One token's activations and tables.
struct LutActs {
  const float* s = nullptr;       // [nb] block scales
  const int32_t* isum = nullptr;  // [nb] Σ xq of the block
  const float* gsum = nullptr;    // [ng] Σ_{b in g} s_b · isum_b (has_zeros only)
  const uint8_t* tab = nullptr;   // [nb][2 quads][QuadTables(bits)][64]
};

// Gather indices for the table build: byte 16e + n of kGather[c][i] = 16c + 4e + i (the activation that bit i
// of index n adds, for column group e of quad c).
struct GatherIdx {
  alignas(64) uint8_t v[2][4][64];
  GatherIdx() {
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 64; ++k) v[c][i][k] = static_cast<uint8_t>(16 * c + 4 * (k / 16) + i);
  }
};
const GatherIdx kGather;

// The tables of one block (32 activations xq) for both quads: [c][L0, H0, (L1, H1)].
template <int B>
LOWBIT_LUT_ATTR void BuildBlockTables(const int8_t* xq, uint8_t* out) {
  const __m512i x = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  const __m512i xl = _mm512_and_si512(x, lo4);
  // xh = xq >> 4 (arithmetic) = ((xq ^ 0x80) >> 4 as unsigned) − 8
  const __m512i xh = _mm512_sub_epi8(
      _mm512_and_si512(_mm512_srli_epi16(_mm512_xor_si512(x, _mm512_set1_epi8(char(0x80))), 4), lo4),
      _mm512_set1_epi8(8));
  // Mask of the bytes 16e + n whose index n has bit i.
  constexpr uint64_t kRep = 0x0001000100010001ull;
  const __mmask64 m[4] = {0xAAAAull * kRep, 0xCCCCull * kRep, 0xF0F0ull * kRep, 0xFF00ull * kRep};
  for (int c = 0; c < 2; ++c) {
    __m512i tl = _mm512_setzero_si512(), th = _mm512_setzero_si512();
    for (int i = 0; i < 4; ++i) {
      const __m512i idx = _mm512_load_si512(kGather.v[c][i]);
      tl = _mm512_mask_add_epi8(tl, m[i], tl, _mm512_permutexvar_epi8(idx, xl));
      th = _mm512_mask_add_epi8(th, m[i], th, _mm512_permutexvar_epi8(idx, xh));
    }
    uint8_t* o = out + c * QuadTables(B) * 64;
    for (int p = 0; p < std::min(B, 2); ++p) {
      _mm512_storeu_si512(o + 2 * p * 64, tl);
      _mm512_storeu_si512(o + (2 * p + 1) * 64, th);
      tl = _mm512_add_epi8(tl, tl);
      th = _mm512_add_epi8(th, th);
    }
  }
}

// Tiles tile .. tile + kR − 1 (contiguous), one token; y receives kR · 16 outputs.
template <int B, bool kSym, int kR>
LOWBIT_LUT_ATTR __attribute__((noinline)) void LutTiles(const uint8_t* __restrict tiles, size_t tile_bytes,
                                                        size_t code_bytes, const LutActs& a, size_t ng, size_t gb,
                                                        size_t pf, float* __restrict y) {
  constexpr size_t kBlockBytes = 64 * B;
  constexpr size_t kQuadTabs = QuadTables(B);
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  const __m512i esel = _mm512_set1_epi32(0x30201000);  // e << 4 at byte 4r + e
  const __m512i ones = _mm512_set1_epi8(1), sixteen = _mm512_set1_epi8(16);
  const __m512i fours = _mm512_set1_epi8(4), sixtyfour = _mm512_set1_epi8(64);
  __m512 acc[kR];
  for (int r = 0; r < kR; ++r) acc[r] = _mm512_setzero_ps();
  for (size_t g = 0; g < ng; ++g) {
    __m512 accg[kR];
    for (int r = 0; r < kR; ++r) accg[r] = _mm512_setzero_ps();
    for (size_t b = g * gb; b < (g + 1) * gb; ++b) {
      const uint8_t* tab = a.tab + b * 2 * kQuadTabs * 64;
      __m512i T[2][kQuadTabs];
      for (int c = 0; c < 2; ++c)
        for (size_t k = 0; k < kQuadTabs; ++k) T[c][k] = _mm512_loadu_si512(tab + (c * kQuadTabs + k) * 64);
      const __m512i init = kSym ? _mm512_set1_epi32(-(a.isum[b] << (B - 1))) : _mm512_setzero_si512();
      const __m512 sb = _mm512_set1_ps(a.s[b]);
      for (int r = 0; r < kR; ++r) {
        const uint8_t* blk = tiles + r * tile_bytes + b * kBlockBytes;
        if (pf)
          for (size_t l = 0; l < kBlockBytes; l += 64)
            _mm_prefetch(reinterpret_cast<const char*>(blk + pf + l), _MM_HINT_T1);
        __m512i idx[2][B];
        for (int p = 0; p < B; ++p) {
          const __m512i v = _mm512_loadu_si512(blk + 64 * p);
          idx[0][p] = _mm512_ternarylogic_epi32(v, lo4, esel, 0xEA);  // (v & 0x0F) | e << 4
          idx[1][p] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), lo4, esel, 0xEA);
        }
        __m512i P[2];
        P[0] = init;
        P[1] = _mm512_setzero_si512();
        for (int c = 0; c < 2; ++c) {
          __m512i lo = _mm512_permutexvar_epi8(idx[c][0], T[c][0]);
          __m512i hi = _mm512_permutexvar_epi8(idx[c][0], T[c][1]);
          if constexpr (B >= 2) {
            lo = _mm512_add_epi8(lo, _mm512_permutexvar_epi8(idx[c][1], T[c][2]));
            hi = _mm512_add_epi8(hi, _mm512_permutexvar_epi8(idx[c][1], T[c][3]));
          }
          P[c] = _mm512_dpbusd_epi32(P[c], lo, ones);
          P[c] = _mm512_dpbusd_epi32(P[c], sixteen, hi);
          if constexpr (B == 3) {  // plane 2 from the plane-0 tables, ×4 in the widening multipliers
            P[c] = _mm512_dpbusd_epi32(P[c], _mm512_permutexvar_epi8(idx[c][2], T[c][0]), fours);
            P[c] = _mm512_dpbusd_epi32(P[c], sixtyfour, _mm512_permutexvar_epi8(idx[c][2], T[c][1]));
          }
        }
        accg[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(P[0], P[1])), sb, accg[r]);
      }
    }
    for (int r = 0; r < kR; ++r) {
      const auto* dh = reinterpret_cast<const __m256i*>(tiles + r * tile_bytes + code_bytes) + g;
      acc[r] = _mm512_fmadd_ps(accg[r], _mm512_cvtph_ps(_mm256_loadu_si256(dh)), acc[r]);
      if constexpr (!kSym)
        acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(dh + ng)), _mm512_set1_ps(a.gsum[g]), acc[r]);
    }
  }
  for (int r = 0; r < kR; ++r) _mm512_storeu_ps(y + r * kLutTileRows, acc[r]);
}

template <int B, bool kSym>
LOWBIT_LUT_ATTR void LutRange(const PackedDesc& d, const uint8_t* tiles, const LutActs& a, size_t i0, size_t i1,
                              size_t pf, float* y) {
  const size_t tb = lut_tile_bytes(d), cb = lut_tile_code_bytes(d);
  const size_t ng = d.n_groups(), gb = d.group_size / kPackBlock;
  size_t i = i0;
  for (; i + 4 <= i1; i += 4) LutTiles<B, kSym, 4>(tiles + i * tb, tb, cb, a, ng, gb, pf, y + i * kLutTileRows);
  for (; i + 2 <= i1; i += 2) LutTiles<B, kSym, 2>(tiles + i * tb, tb, cb, a, ng, gb, pf, y + i * kLutTileRows);
  if (i < i1) LutTiles<B, kSym, 1>(tiles + i * tb, tb, cb, a, ng, gb, pf, y + i * kLutTileRows);
}

LOWBIT_LUT_ATTR void LutDispatch(const PackedDesc& d, const uint8_t* tiles, const LutActs& a, size_t i0, size_t i1,
                                 size_t pf, float* y) {
  const bool sym = !d.has_zeros;
  switch (d.bits) {
    case 1: return sym ? LutRange<1, true>(d, tiles, a, i0, i1, pf, y) : LutRange<1, false>(d, tiles, a, i0, i1, pf, y);
    case 2: return sym ? LutRange<2, true>(d, tiles, a, i0, i1, pf, y) : LutRange<2, false>(d, tiles, a, i0, i1, pf, y);
    default: return sym ? LutRange<3, true>(d, tiles, a, i0, i1, pf, y) : LutRange<3, false>(d, tiles, a, i0, i1, pf, y);
  }
}

LOWBIT_LUT_ATTR void BuildTables(int bits, const int8_t* xq, size_t nb, uint8_t* tab) {
  const size_t per_block = 2 * QuadTables(bits) * 64;
  for (size_t b = 0; b < nb; ++b) {
    switch (bits) {
      case 1: BuildBlockTables<1>(xq + b * kPackBlock, tab + b * per_block); break;
      case 2: BuildBlockTables<2>(xq + b * kPackBlock, tab + b * per_block); break;
      default: BuildBlockTables<3>(xq + b * kPackBlock, tab + b * per_block); break;
    }
  }
}

// A per-thread buffer that only grows.
template <typename T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

void matmul_q_lut(ThreadPool& pool, const PackedDesc& d, const uint8_t* tiles, const float* x, size_t n_tokens,
                  float* y) {
  d.validate("matmul_q_lut weights");
  if (!lut_tiles_fit(d)) fail("matmul_q_lut: no LUT tiles for this format ({} bits)", d.bits);
  if (!lut_kernel_available()) fail("matmul_q_lut: this CPU lacks AVX-512 BW/VBMI/VNNI");
  const size_t nb = d.n_blocks(), ng = d.n_groups(), gb = d.group_size / kPackBlock, cols = d.cols;
  thread_local std::vector<int8_t> xq_buf;
  thread_local std::vector<float> f_buf;
  thread_local std::vector<int32_t> i_buf;
  int8_t* xq = scratch(xq_buf, nb * kPackBlock);
  float* s = scratch(f_buf, nb + ng);
  float* gsum = s + nb;
  int32_t* isum = scratch(i_buf, nb);
  const size_t tab_bytes = nb * 2 * QuadTables(d.bits) * 64;
  const KernelTuning& tuning = kernel_tuning();
  const size_t n_tiles = d.rows / kLutTileRows;
  const size_t grain = std::max<size_t>(2, tuning.dot_grain / kLutTileRows);
  for (size_t t = 0; t < n_tokens; ++t) {
    quantize_activations(x + t * cols, cols, xq, s, isum);
    for (size_t g = 0; g < ng; ++g) {
      float sum = 0.0f;
      for (size_t b = g * gb; b < (g + 1) * gb; ++b) sum += s[b] * static_cast<float>(isum[b]);
      gsum[g] = sum;
    }
    float* yt = y + t * d.rows;
    // Each thread builds its own copy of the tables (~1 µs for 2048 columns): reading 32 KiB that another core
    // just wrote cost 2 threads ~15% of the warm 5632 × 2048 2-bit call (the lines come over one by one).
    pool.parallel_for(n_tiles, grain, [&](size_t i0, size_t i1) {
      thread_local std::vector<uint8_t> tab_buf;
      uint8_t* tab_raw = scratch(tab_buf, tab_bytes + 64);
      uint8_t* tab = tab_raw + ((64 - reinterpret_cast<uintptr_t>(tab_raw) % 64) % 64);  // 64-byte aligned
      BuildTables(d.bits, xq, nb, tab);
      const LutActs a{s, isum, gsum, tab};
      LutDispatch(d, tiles, a, i0, i1, tuning.decode_prefetch_bytes, yt);
    });
  }
}

#else  // !LOWBIT_LUT_X86

bool lut_kernel_available() { return false; }

void matmul_q_lut(ThreadPool&, const PackedDesc&, const uint8_t*, const float*, size_t, float*) {
  fail("matmul_q_lut: x86-64 AVX-512 only");
}

#endif

}  // namespace lowbit::kernels
