// Private helpers shared by the .lbt bundle writer and reader: little-endian fields of the fixed header, alignment,
// XXH64 streaming and the text form of checksums. The layout itself is documented in docs/formats.md.
#pragma once
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "lowbit/bundle.h"

namespace lowbit::bundle_detail {

// Fixed header field offsets.
inline constexpr size_t kOffMagic = 0;           // 8 bytes
inline constexpr size_t kOffVersion = 8;         // u32
inline constexpr size_t kOffFlags = 12;          // u32
inline constexpr size_t kOffHeaderLength = 16;   // u64: bytes of the JSON header
inline constexpr size_t kOffHeaderChecksum = 24; // u64: XXH64 (seed 0) of the JSON header bytes
static_assert(kOffHeaderChecksum + 8 == kBundleFixedHeaderBytes);

inline uint32_t load_u32le(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t load_u64le(const uint8_t* p) { return uint64_t(load_u32le(p)) | uint64_t(load_u32le(p + 4)) << 32; }
inline void store_u32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_u64le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Round up to a multiple of kBundleAlignment; the caller guarantees no overflow (x < 2^63).
inline uint64_t align_up(uint64_t x) { return (x + kBundleAlignment - 1) / kBundleAlignment * kBundleAlignment; }

// Checksums are stored in the JSON as exactly 16 lowercase hex digits (so a header's length does not depend on
// the checksum values — the writer relies on that).
inline constexpr size_t kChecksumHexDigits = 16;
std::string checksum_hex(uint64_t v);
bool parse_checksum_hex(std::string_view s, uint64_t& out);  // exactly 16 hex digits (either case)

// Incremental XXH64 (seed 0).
class Xxh64 {
 public:
  Xxh64() : state_(XXH64_createState()) {
    if (!state_) throw std::bad_alloc();
    XXH64_reset(state_.get(), 0);
  }
  void update(const void* data, size_t n) {
    if (n > 0) XXH64_update(state_.get(), data, n);
  }
  uint64_t digest() const { return XXH64_digest(state_.get()); }

 private:
  struct Free {
    void operator()(XXH64_state_t* s) const { XXH64_freeState(s); }
  };
  std::unique_ptr<XXH64_state_t, Free> state_;
};

// A name as shown inside an error message: control bytes become \xNN so the message stays one line.
std::string printable_name(std::string_view name);

}  // namespace lowbit::bundle_detail
