#include "bundle/bundle_format.h"

#include <fmt/format.h>

namespace lowbit {

uint64_t bundle_xxh64(std::span<const uint8_t> bytes) {
  // XXH64 accepts a null pointer only with length 0, which is what an empty span may hold.
  return XXH64(bytes.data(), bytes.size(), 0);
}

namespace bundle_detail {

std::string checksum_hex(uint64_t v) { return fmt::format("{:016x}", v); }

bool parse_checksum_hex(std::string_view s, uint64_t& out) {
  if (s.size() != kChecksumHexDigits) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

std::string printable_name(std::string_view name) {
  std::string s;
  s.reserve(name.size());
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      s += fmt::format("\\x{:02x}", u);
    } else {
      s += c;
    }
  }
  return s;
}

}  // namespace bundle_detail
}  // namespace lowbit
