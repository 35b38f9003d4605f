// Measured multiply-add peaks of this machine: the rooflines prefill (compute-bound) is compared against.
#pragma once
#include <string>

#include "lowbit/thread_pool.h"

namespace lowbit {

struct ComputePeak {
  double gops = 0.0;      // 1e9 operations/s, a multiply-add counting as 2 (0 when the ISA lacks the kind)
  std::string kernel;     // the instruction that was timed, e.g. "vpdpbusd zmm" or "fmla v.4s"
};

struct ComputePeaks {
  ComputePeak int8;  // u8×s8 (or s8×s8) dot products into int32: VNNI vpdpbusd, AVX2 vpmaddubsw+vpmaddwd, sdot
  ComputePeak bf16;  // bf16 pairs into fp32: AVX512-BF16 vdpbf16ps, ARM bfdot
  ComputePeak fp32;  // fp32 FMA
};

enum class PeakKind { Int8, Bf16, Fp32 };

// Every thread of `pool` runs independent multiply-add chains (enough to hide the latency) for about
// `seconds`; the best of 3 passes is kept. One kind, or all three.
ComputePeak measure_compute_peak(ThreadPool& pool, PeakKind kind, double seconds = 0.1);
ComputePeaks measure_compute_peaks(ThreadPool& pool, double seconds = 0.1);

}  // namespace lowbit
