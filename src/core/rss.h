#pragma once
#include <cstdint>

namespace lowbit {
// Peak resident set size of this process, in bytes.
uint64_t peak_rss_bytes();
}  // namespace lowbit
