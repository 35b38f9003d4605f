// A persistent thread pool. Threads are created once; each parallel_for wakes them (spinning briefly
// before sleeping, so back-to-back kernel calls in a decode step pay no futex round trip).
// The calling thread takes part as worker 0.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(thread_index, n_threads) once on every thread and waits for all.
  void run(const std::function<void(int, int)>& fn);

  // Calls fn(begin, end) on chunks of [0, n) aligned to `grain` (one or more chunks per thread). Each thread
  // starts on its own contiguous share, front to back; a thread that finishes early takes the remaining
  // chunks from the back of another's share, so a slow or descheduled core does not hold up the rest.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker(int index);
  bool take_front(int owner, uint32_t* first, uint32_t* last);
  bool take_back(int victim, uint32_t* block);

  // A thread's share of grain blocks [front, back) in one word (front low, back high), so that the owner
  // taking from the front and a thief taking from the back can never both get the same block.
  struct alignas(64) Share {
    std::atomic<uint64_t> front_back{0};
  };

  int n_threads_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Share> shares_;
};

// Number of physical cores (falls back to hardware_concurrency).
int default_thread_count();

}  // namespace lowbit
