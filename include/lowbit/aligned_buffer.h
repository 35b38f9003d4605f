// A heap buffer aligned to 64 bytes (a cache line, and the widest SIMD load), for weights and activations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lowbit {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  // Buffers of 2 MiB and more (weights) are mapped directly, 2 MiB-aligned, and asked for transparent huge
  // pages: decode streams them once per token, and with 4 KiB pages the hardware prefetchers stop at every
  // page boundary (one thread streamed 4-bit weights ~20% slower here). Mapping them directly also returns
  // them to the system when freed (malloc's adaptive mmap threshold would keep later ones on its heap).
  void resize(size_t n) {
    const size_t bytes = n * sizeof(T);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHuge) {
      // (Not rounded up to 2 MiB: a partial last huge page would be faulted in whole.)
      const size_t len = (bytes + 4095) / 4096 * 4096;
      void* m = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) throw std::bad_alloc();
      // Trim to a 2 MiB-aligned range of len bytes.
      const auto base = reinterpret_cast<uintptr_t>(m);
      const uintptr_t start = (base + kHuge - 1) / kHuge * kHuge;
      if (start > base) munmap(m, start - base);
      if (base + len + kHuge > start + len) munmap(reinterpret_cast<void*>(start + len), base + kHuge - start);
      madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);
      ptr_ = std::unique_ptr<T, Free>(reinterpret_cast<T*>(start), Free{len});
      size_ = n;
      return;
    }
#endif
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64));
    if (!p) throw std::bad_alloc();
    ptr_ = std::unique_ptr<T, Free>(p, Free{0});
    size_ = n;
  }
  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return ptr_.get()[i]; }
  const T& operator[](size_t i) const { return ptr_.get()[i]; }

 private:
  static constexpr size_t kHuge = size_t{2} << 20;
  struct Free {
    size_t mapped = 0;  // bytes of a direct mapping; 0: from aligned_alloc
    void operator()(T* p) const {
#if defined(__linux__)
      if (mapped) {
        munmap(p, mapped);
        return;
      }
#endif
      std::free(p);
    }
  };
  std::unique_ptr<T, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace lowbit
