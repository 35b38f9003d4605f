// Thread pool: parallel_for hands out every grain-aligned block exactly once, whatever the thread count and
// shape, and a thread that finishes early takes work from the back of a slow thread's share.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "lowbit/thread_pool.h"

namespace lowbit {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnceInGrainAlignedChunks) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, size_t{4097}}) {
      for (size_t grain : {size_t{1}, size_t{3}, size_t{16}, size_t{5000}}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<bool> misaligned{false};
        pool.parallel_for(n, grain, [&](size_t b, size_t e) {
          if (b % grain != 0 || (e != n && e % grain != 0) || b >= e || e > n) misaligned = true;
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        EXPECT_FALSE(misaligned) << "threads " << threads << " n " << n << " grain " << grain;
        for (size_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1) << "index " << i << " threads " << threads << " n " << n << " grain " << grain;
      }
    }
  }
}

TEST(ThreadPool, AnIdleThreadTakesBlocksFromASlowThreadsShare) {
  ThreadPool pool(2);
  const size_t n = 64;
  std::vector<std::thread::id> owner(n);
  pool.parallel_for(n, 1, [&](size_t b, size_t e) {
    // Blocks of the first half (thread 0's share in a static split) are slow; the second half is instant.
    for (size_t i = b; i < e; ++i) {
      if (i < n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      owner[i] = std::this_thread::get_id();
    }
  });
  // The last block of the slow half was taken by the thread that ran the fast half.
  EXPECT_EQ(owner[n / 2 - 1], owner[n - 1]);
  EXPECT_NE(owner[0], owner[n - 1]);
}

}  // namespace
}  // namespace lowbit
