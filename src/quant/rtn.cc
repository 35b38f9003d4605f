// Round-to-nearest groupwise quantization (see rtn.h for the formulas) and ggml block repacking.
#include "quant/rtn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <vector>

#include "io/ggml_quants.h"
#include "kernels/half.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

using kernels::f32_to_half;
using kernels::half_to_f32;

uint16_t to_half_checked(float v, const char* name) {
  const uint16_t h = f32_to_half(v);
  if ((h & 0x7C00u) == 0x7C00u) fail("quantize_rtn: group {} {} is outside the f16 range", name, v);
  return h;
}

// Codes for a fixed (rounded) grid; returns the squared error.
double codes_asym(const float* w, size_t n, int nmax, float d, float m, uint8_t* q) {
  double err = 0.0;
  for (size_t i = 0; i < n; ++i) {
    int c = 0;
    if (d > 0.0f) c = std::clamp(static_cast<int>(std::round((w[i] - m) / d)), 0, nmax);
    q[i] = static_cast<uint8_t>(c);
    const double e = double(w[i]) - double(d * static_cast<float>(c) + m);
    err += e * e;
  }
  return err;
}

double codes_sym(const float* w, size_t n, int bits, float d, uint8_t* q) {
  const int zero = 1 << (bits - 1), nmax = (1 << bits) - 1;
  double err = 0.0;
  for (size_t i = 0; i < n; ++i) {
    int c = zero;
    if (d != 0.0f) c = std::clamp(static_cast<int>(std::round(w[i] / d)) + zero, 0, nmax);
    q[i] = static_cast<uint8_t>(c);
    const double e = double(w[i]) - double(d * static_cast<float>(c - zero));
    err += e * e;
  }
  return err;
}

void quantize_group_asym(const float* w, size_t n, int bits, bool search, uint8_t* q, uint16_t* dh_out,
                         uint16_t* mh_out, uint8_t* tmp) {
  const int nmax = (1 << bits) - 1;
  float mn = w[0], mx = w[0];
  for (size_t i = 1; i < n; ++i) {
    mn = std::min(mn, w[i]);
    mx = std::max(mx, w[i]);
  }
  uint16_t dh = to_half_checked((mx - mn) / static_cast<float>(nmax), "scale");
  uint16_t mh = to_half_checked(mn, "min");
  double best = codes_asym(w, n, nmax, half_to_f32(dh), half_to_f32(mh), q);
  if (search && mx > mn) {
    // Candidate inverse scales around nmax / (max - min); each candidate's codes get a least-squares (d, m).
    for (int is = -8; is <= 8; ++is) {
      if (is == 0) continue;
      const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / (mx - mn);
      double sq = 0, sq2 = 0, sw = 0, sqw = 0;
      for (size_t i = 0; i < n; ++i) {
        const int c = std::clamp(static_cast<int>(std::round((w[i] - mn) * iscale)), 0, nmax);
        sq += c;
        sq2 += double(c) * c;
        sw += w[i];
        sqw += double(c) * w[i];
      }
      const double det = double(n) * sq2 - sq * sq;
      if (det <= 0) continue;
      const double d = (double(n) * sqw - sq * sw) / det;
      const double m = (sw - d * sq) / double(n);
      if (!(d > 0)) continue;
      const uint16_t cdh = f32_to_half(static_cast<float>(d)), cmh = f32_to_half(static_cast<float>(m));
      if ((cdh & 0x7C00u) == 0x7C00u || (cmh & 0x7C00u) == 0x7C00u) continue;
      const double err = codes_asym(w, n, nmax, half_to_f32(cdh), half_to_f32(cmh), tmp);
      if (err < best) {
        best = err;
        dh = cdh;
        mh = cmh;
        std::memcpy(q, tmp, n);
      }
    }
  }
  *dh_out = dh;
  *mh_out = mh;
}

void quantize_group_sym(const float* w, size_t n, int bits, bool search, uint8_t* q, uint16_t* dh_out,
                        uint8_t* tmp) {
  const int zero = 1 << (bits - 1), nmax = (1 << bits) - 1;
  float amax = 0.0f, mx = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    if (std::fabs(w[i]) > amax) {
      amax = std::fabs(w[i]);
      mx = w[i];
    }
  }
  uint16_t dh = to_half_checked(mx / -static_cast<float>(zero), "scale");
  double best = codes_sym(w, n, bits, half_to_f32(dh), q);
  if (search && amax > 0.0f) {
    // make_qx_quants: codes l in [-zero, zero - 1] from a few inverse scales, least-squares d per candidate.
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      const float iscale = -(static_cast<float>(zero) + 0.1f * static_cast<float>(is)) / mx;
      double sll = 0, swl = 0;
      for (size_t i = 0; i < n; ++i) {
        const int l = std::clamp(static_cast<int>(std::round(w[i] * iscale)), -zero, nmax - zero);
        sll += double(l) * l;
        swl += double(w[i]) * l;
      }
      if (sll <= 0) continue;
      const uint16_t cdh = f32_to_half(static_cast<float>(swl / sll));
      if ((cdh & 0x7C00u) == 0x7C00u) continue;
      const double err = codes_sym(w, n, bits, half_to_f32(cdh), tmp);
      if (err < best) {
        best = err;
        dh = cdh;
        std::memcpy(q, tmp, n);
      }
    }
  }
  *dh_out = dh;
}

void quantize_rows(const float* W, const PackedDesc& d, size_t r0, size_t r1, uint8_t* codes, uint16_t* scales,
                   uint16_t* mins, const RtnOptions& opt) {
  std::vector<uint8_t> q(d.cols), tmp(d.group_size);
  const size_t ng = d.n_groups();
  for (size_t r = r0; r < r1; ++r) {
    const float* w = W + r * d.cols;
    for (size_t g = 0; g < ng; ++g) {
      const size_t k0 = g * d.group_size;
      if (d.has_zeros)
        quantize_group_asym(w + k0, d.group_size, d.bits, opt.search, q.data() + k0, &scales[r * ng + g],
                            &mins[r * ng + g], tmp.data());
      else
        quantize_group_sym(w + k0, d.group_size, d.bits, opt.search, q.data() + k0, &scales[r * ng + g],
                           tmp.data());
    }
    pack_row_codes(d, q.data(), codes + r * d.row_code_bytes());
  }
}

}  // namespace

void quantize_rtn(const float* W, const PackedDesc& d, uint8_t* codes, uint16_t* scales, uint16_t* mins,
                  const RtnOptions& opt) {
  d.validate("quantize_rtn");
  quantize_rows(W, d, 0, d.rows, codes, scales, mins, opt);
}

void quantize_rtn(ThreadPool& pool, const float* W, const PackedDesc& d, uint8_t* codes, uint16_t* scales,
                  uint16_t* mins, const RtnOptions& opt) {
  d.validate("quantize_rtn");
  // Errors thrown on a worker thread are carried back to the caller.
  std::exception_ptr error;
  std::mutex mu;
  pool.parallel_for(d.rows, 4, [&](size_t r0, size_t r1) {
    try {
      quantize_rows(W, d, r0, r1, codes, scales, mins, opt);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

PackedStorage quantize_rtn(ThreadPool& pool, const float* W, const PackedDesc& d, const RtnOptions& opt) {
  d.validate("quantize_rtn");
  PackedStorage s(d);
  quantize_rtn(pool, W, d, s.codes.data(), s.scales.data(), d.has_zeros ? s.mins.data() : nullptr, opt);
  return s;
}

double mse(const float* a, const float* b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double e = double(a[i]) - double(b[i]);
    s += e * e;
  }
  return n ? s / double(n) : 0.0;
}

double packed_mse(const float* W, const PackedMatrix& m) {
  const PackedDesc& d = m.desc;
  std::vector<float> row(d.cols);
  double s = 0.0;
  for (size_t r = 0; r < d.rows; ++r) {
    dequantize_packed_row(m, r, row.data());
    s += mse(W + r * d.cols, row.data(), d.cols) * double(d.cols);
  }
  return s / (double(d.rows) * double(d.cols));
}

PackedStorage pack_from_ggml(GgmlType type, const uint8_t* src, size_t rows, size_t cols, ActivationMode act) {
  PackedDesc d;
  d.group_size = 32;
  d.rows = rows;
  d.cols = cols;
  d.act = act;
  size_t src_block = 0;
  switch (type) {
    case GgmlType::Q4_0: d.bits = 4; d.has_zeros = false; src_block = 18; break;
    case GgmlType::Q4_1: d.bits = 4; d.has_zeros = true; src_block = 20; break;
    case GgmlType::Q8_0: d.bits = 8; d.has_zeros = false; src_block = 34; break;
    default: fail("pack_from_ggml: {} has no lossless packed form", ggml_type_name(type));
  }
  if (cols % 32 != 0) fail("pack_from_ggml: row length {} is not a multiple of the {} block size 32", cols,
                           ggml_type_name(type));
  PackedStorage s(d);
  const size_t nb = cols / 32;
  for (size_t i = 0; i < rows * nb; ++i) {
    const uint8_t* b = src + i * src_block;
    std::memcpy(&s.scales[i], b, 2);
    uint8_t* out = s.codes.data() + i * d.block_bytes();
    switch (type) {
      case GgmlType::Q4_0: std::memcpy(out, b + 2, 16); break;
      case GgmlType::Q4_1:
        std::memcpy(&s.mins[i], b + 2, 2);
        std::memcpy(out, b + 4, 16);
        break;
      default:
        for (int j = 0; j < 32; ++j) out[j] = static_cast<uint8_t>(b[2 + j] ^ 0x80u);
        break;
    }
  }
  return s;
}

}  // namespace lowbit
