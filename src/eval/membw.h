// Measured memory read bandwidth: the roofline that decode (weight streaming) is compared against.
#pragma once
#include <cstddef>

#include "lowbit/thread_pool.h"

namespace lowbit {

// Read bandwidth in GB/s (1e9 bytes/s) with every thread of `pool` streaming its own contiguous slice of a
// `bytes`-sized buffer (allocated and first-touched by that thread), best of `repeats` passes. `bytes` should
// be far larger than the last-level cache.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30, int repeats = 5);

}  // namespace lowbit
