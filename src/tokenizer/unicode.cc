#include "tokenizer/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <atomic>
#include <memory>

#include "lowbit/error.h"

namespace lowbit::tok {

namespace {

constexpr uint32_t kMaxCp = 0x110000;

CharClass ascii_class(uint32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return CharClass::kLetter;
  if (c >= '0' && c <= '9') return CharClass::kNumber;
  switch (c) {
    case '!': case '"': case '#': case '%': case '&': case '\'': case '(': case ')': case '*': case ',':
    case '-': case '.': case '/': case ':': case ';': case '?': case '@': case '[': case '\\': case ']':
    case '_': case '{': case '}':
      return CharClass::kPunct;
    case '$': case '+': case '<': case '=': case '>': case '^': case '`': case '|': case '~':
      return CharClass::kSymbol;
    default:
      return CharClass::kOther;
  }
}

// One anchored match of `(\p{L})|(\p{N})|(\p{P})|(\p{M})|(\p{S})` against the code point tells its class.
class Classifier {
 public:
  Classifier() {
    int err = 0;
    PCRE2_SIZE off = 0;
    static const char kPattern[] = R"((\p{L})|(\p{N})|(\p{P})|(\p{M})|(\p{S}))";
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &err, &off, nullptr);
    if (!code_) fail("tokenizer: cannot compile the Unicode category pattern (PCRE2 error {})", err);
  }
  ~Classifier() { pcre2_code_free(code_); }

  CharClass classify(uint32_t cp) const {
    std::string s;
    append_utf8(s, cp);
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, PCRE2_ANCHORED, md.get(),
                         nullptr);
    if (rc < 2) return CharClass::kOther;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    for (int g = 1; g < rc; ++g) {
      if (ov[2 * g] != PCRE2_UNSET) return static_cast<CharClass>(g);
    }
    return CharClass::kOther;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// 0 = not looked up yet, otherwise CharClass + 1. Races only ever store the same value.
std::atomic<uint8_t> g_class_cache[kMaxCp];

}  // namespace

CharClass char_class(uint32_t cp) {
  if (cp < 128) return ascii_class(cp);
  if (cp >= kMaxCp || (cp >= 0xD800 && cp <= 0xDFFF)) return CharClass::kOther;  // Cs / out of range
  uint8_t v = g_class_cache[cp].load(std::memory_order_relaxed);
  if (v == 0) {
    static const Classifier classifier;
    v = static_cast<uint8_t>(classifier.classify(cp)) + 1;
    g_class_cache[cp].store(v, std::memory_order_relaxed);
  }
  return static_cast<CharClass>(v - 1);
}

bool is_whitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0x40) == 0) {  // stray continuation byte
      out.push_back(0xFFFD);
      i += 1;
    } else if ((c & 0x20) == 0) {
      if (!cont(i + 1)) { out.push_back(0xFFFD); i += 1; continue; }
      out.push_back(((c & 0x1F) << 6) | (p[i + 1] & 0x3F));
      i += 2;
    } else if ((c & 0x10) == 0) {
      if (!cont(i + 1) || !cont(i + 2)) { out.push_back(0xFFFD); i += 1; continue; }
      out.push_back(((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F));
      i += 3;
    } else if ((c & 0x08) == 0) {
      if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) { out.push_back(0xFFFD); i += 1; continue; }
      uint32_t cp = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
      out.push_back(cp < kMaxCp ? cp : 0xFFFD);
      i += 4;
    } else {
      out.push_back(0xFFFD);
      i += 1;
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {
struct Gpt2Bytes {
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_cp;  // every mapped code point is below 256 + 68
  Gpt2Bytes() {
    from_cp.fill(-1);
    auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      append_utf8(to_utf8[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};
const Gpt2Bytes& gpt2_bytes() {
  static const Gpt2Bytes t;
  return t;
}
}  // namespace

const std::string& gpt2_byte_to_utf8(uint8_t b) { return gpt2_bytes().to_utf8[b]; }

int gpt2_cp_to_byte(uint32_t cp) { return cp < 324 ? gpt2_bytes().from_cp[cp] : -1; }

}  // namespace lowbit::tok
