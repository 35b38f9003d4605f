// Run-time kernel parameters (QIGen-style per-CPU tuning). A performance model predicts them from the CPU's
// caches; `lowbit tune` times candidates around the prediction on this machine and saves a profile that later
// runs load (~/.cache/lowbit/tune.json, or --tune-profile). docs/kernels.md explains the model.
#pragma once
#include <cstddef>
#include <string>

namespace lowbit::kernels {

// Saved profiles carry this; a profile of another version (parameters timed on other kernels or layouts) is
// ignored for the prediction. 2: row tiles with inline scales (decode prefetch distances timed before are wrong).
// 3: decode prefetches became non-temporal and 4-bit only (distances timed as L2 prefetches do not carry over).
constexpr int kTuneProfileVersion = 3;

struct KernelTuning {
  // int8-activation matmul: from this many tokens on, the outer-product (prefill) form replaces the dot
  // (decode) form. Below it, each weight row is decoded once per token; above it, once per 32-row panel.
  size_t a8_outer_min_tokens = 6;
  // Prefill: tokens per block. Every 32-row weight panel is unpacked once per block and multiplied with the
  // block's int8 activations, which should stay in L2 (block · cols bytes); 0 = all tokens in one block.
  size_t prefill_token_block = 0;
  // Decode: rows per task of the thread pool (balance against per-task overhead).
  size_t dot_grain = 16;
  // Decode from 4-bit row tiles: non-temporal prefetches this many bytes ahead of the weights being read;
  // 0 = none. (2-, 3- and 8-bit tiles never prefetch: measured +0.7-2.7%, -2.4% and -5-16% end to end.)
  size_t decode_prefetch_bytes = 0;
};

struct CpuInfo {
  std::string model_name;  // /proc/cpuinfo "model name" (or "unknown")
  std::string isa;         // the SIMD target the kernels dispatch to, e.g. "AVX3"
  size_t l1d = 32 << 10, l2 = 1 << 20, l3 = 8 << 20;  // bytes per core (L3: total), sysfs or defaults
  int cores = 1;                                        // physical
};

CpuInfo read_cpu_info();
// The performance model's choice for this CPU (used when no profile has been saved).
KernelTuning predict_tuning(const CpuInfo& cpu);

// The parameters the kernels use now, and replacing them (not thread-safe against running kernels: set them
// before a model runs).
const KernelTuning& kernel_tuning();
void set_kernel_tuning(const KernelTuning& t);

// ~/.cache/lowbit/tune.json (or $LOWBIT_CACHE/tune.json).
std::string default_tune_profile_path();
// Loads `path` (empty: the default path if it exists, else the prediction) into the kernels. A profile saved
// for a different CPU or SIMD target is ignored with a note. Returns a one-line description of the source.
std::string init_kernel_tuning(const std::string& path = "");
// Writes a profile (temporary name + rename): the CPU it was measured on, the parameters, and free-form
// measurement notes (JSON text) for the record.
void save_tune_profile(const std::string& path, const CpuInfo& cpu, const KernelTuning& t,
                       const std::string& measurements_json);

}  // namespace lowbit::kernels
