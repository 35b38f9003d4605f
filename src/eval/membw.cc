// Read-bandwidth probe. Each thread sums its own slice with 8 independent SIMD accumulators (one add chain
// would be latency-bound well below the memory system's rate); slices are allocated 2 MiB-aligned and
// advised for transparent huge pages so TLB misses do not cost bandwidth, and first-touched by the thread
// that reads them (NUMA locality).
#include "eval/membw.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

// clang-format off
#include "kernels/hwy_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "eval/membw.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of n floats (n a multiple of 8 vectors; the caller sizes slices accordingly).
float SumStream(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto a4 = hn::Zero(df), a5 = hn::Zero(df), a6 = hn::Zero(df), a7 = hn::Zero(df);
  size_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    a0 = hn::Add(a0, hn::Load(df, p + i + 0 * N));
    a1 = hn::Add(a1, hn::Load(df, p + i + 1 * N));
    a2 = hn::Add(a2, hn::Load(df, p + i + 2 * N));
    a3 = hn::Add(a3, hn::Load(df, p + i + 3 * N));
    a4 = hn::Add(a4, hn::Load(df, p + i + 4 * N));
    a5 = hn::Add(a5, hn::Load(df, p + i + 5 * N));
    a6 = hn::Add(a6, hn::Load(df, p + i + 6 * N));
    a7 = hn::Add(a7, hn::Load(df, p + i + 7 * N));
  }
  const auto s = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  float sum = hn::GetLane(hn::SumOfLanes(df, s));
  for (; i < n; ++i) sum += p[i];
  return sum;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(SumStream);

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  const int nt = pool.size();
  constexpr size_t kAlign = size_t{2} << 20;
  // Per-thread slice: a multiple of 4 KiB (which is a multiple of 8 vectors on every target).
  const size_t slice_bytes = std::max<size_t>(4096, bytes / nt / 4096 * 4096);
  const size_t slice_floats = slice_bytes / sizeof(float);
  std::vector<float*> bufs(nt, nullptr);
  pool.run([&](int t, int) {
    void* p = std::aligned_alloc(kAlign, (slice_bytes + kAlign - 1) / kAlign * kAlign);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, slice_bytes, MADV_HUGEPAGE);
#endif
    if (p) std::memset(p, 0x3c, slice_bytes);  // first touch by the reading thread; 0x3c3c3c3c is a normal float
    bufs[t] = static_cast<float*>(p);
  });
  bool ok = true;
  for (float* b : bufs) ok = ok && b != nullptr;
  double best = 0.0;
  if (ok) {
    auto sum_fn = HWY_DYNAMIC_DISPATCH(SumStream);
    std::vector<float> sums(nt);
    for (int rep = 0; rep < std::max(1, repeats); ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.run([&](int t, int) { sums[t] = sum_fn(bufs[t], slice_floats); });
      const auto t1 = std::chrono::steady_clock::now();
      const double sec = std::chrono::duration<double>(t1 - t0).count();
      best = std::max(best, double(slice_bytes) * nt / sec / 1e9);
    }
    // Keep the sums observable so the reads cannot be optimized away.
    volatile float sink = 0.0f;
    for (float s : sums) sink = sink + s;
    (void)sink;
  }
  for (float* b : bufs) std::free(b);
  return best;
}

}  // namespace lowbit
#endif  // HWY_ONCE
