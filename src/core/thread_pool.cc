#include "lowbit/thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LOWBIT_PAUSE() _mm_pause()
#else
#define LOWBIT_PAUSE() ((void)0)
#endif

namespace lowbit {

namespace {
// Spin this many iterations before sleeping on the condition variable.
constexpr int kSpinIterations = 1 << 16;
// A thread takes 1/kGuidedDivisor of what is left of its share per call: long runs for the kernels'
// streams early on, single blocks near the end, where they balance the threads.
constexpr uint32_t kGuidedDivisor = 4;
constexpr uint64_t kLow32 = 0xffffffffu;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads), shares_(n_threads_) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      LOWBIT_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_)(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(0, n_threads_);
  // Spin briefly, then yield: on a loaded machine a descheduled worker would otherwise cost a whole time slice.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) LOWBIT_PAUSE();
    else std::this_thread::yield();
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  size_t blocks = (n + grain - 1) / grain;
  if (n_threads_ == 1 || blocks == 1) {
    fn(0, n);
    return;
  }
  // Thread t's contiguous share of the blocks, [first, end).
  const auto share = [&](int t) {
    return std::pair<uint64_t, uint64_t>{blocks * t / n_threads_, blocks * (t + 1) / n_threads_};
  };
  if (blocks > kLow32) {  // (beyond what a share word holds: a static split)
    run([&](int t, int) {
      const auto [b0, b1] = share(t);
      if (b0 < b1) fn(b0 * grain, std::min<size_t>(n, b1 * grain));
    });
    return;
  }
  // Each thread starts on its own contiguous share (as a static split would give it) and then helps the
  // others from the back of their shares, so a slow or descheduled core does not hold up the call.
  for (int t = 0; t < n_threads_; ++t) {
    const auto [b0, b1] = share(t);
    shares_[t].front_back.store(b0 | (b1 << 32), std::memory_order_relaxed);  // published by run()
  }
  run([&](int t, int nt) {
    uint32_t first, last;
    while (take_front(t, &first, &last)) fn(first * grain, std::min(n, (size_t{last} + 1) * grain));
    for (int k = 1; k < nt; ++k)
      while (take_back((t + k) % nt, &first)) fn(first * grain, std::min(n, (size_t{first} + 1) * grain));
  });
}

bool ThreadPool::take_front(int owner, uint32_t* first, uint32_t* last) {
  std::atomic<uint64_t>& word = shares_[owner].front_back;
  uint64_t cur = word.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t front = static_cast<uint32_t>(cur), back = static_cast<uint32_t>(cur >> 32);
    if (front >= back) return false;
    const uint32_t take = std::max<uint32_t>(1, (back - front) / kGuidedDivisor);
    if (word.compare_exchange_weak(cur, (cur & ~kLow32) | (front + take), std::memory_order_acq_rel)) {
      *first = front;
      *last = front + take - 1;
      return true;
    }
  }
}

bool ThreadPool::take_back(int victim, uint32_t* block) {
  std::atomic<uint64_t>& word = shares_[victim].front_back;
  uint64_t cur = word.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t front = static_cast<uint32_t>(cur), back = static_cast<uint32_t>(cur >> 32);
    if (front >= back) return false;
    if (word.compare_exchange_weak(cur, front | (uint64_t{back - 1} << 32), std::memory_order_acq_rel)) {
      *block = back - 1;
      return true;
    }
  }
}

int default_thread_count() {
  // Count distinct (physical id, core id) pairs; SMT siblings share a core.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") phys = val;
    if (key == "core id") cores.insert({phys, val});
  }
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

}  // namespace lowbit
