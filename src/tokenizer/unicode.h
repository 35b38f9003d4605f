// Unicode helpers for the tokenizers: a lenient UTF-8 decoder with the same recovery rules as llama.cpp,
// the coarse general-category classes its pre-tokenizer regexes distinguish (\p{L} \p{N} \p{P} \p{M} \p{S}),
// the White_Space set it treats as \s, and GPT-2's byte <-> printable-character table.
//
// Categories come from PCRE2's Unicode tables (Debian's libpcre2-8), looked up once per code point and cached,
// so lowbit carries no generated Unicode data of its own.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::tok {

// The general-category group of a code point, as far as the pre-tokenizers care.
enum class CharClass : uint8_t { kOther = 0, kLetter, kNumber, kPunct, kMark, kSymbol };

CharClass char_class(uint32_t cp);

// Unicode White_Space (PropList.txt): U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_whitespace(uint32_t cp);

// Decodes UTF-8 the way llama.cpp does: the lead byte decides the length, continuation bytes must be 10xxxxxx,
// anything else yields U+FFFD for one byte and decoding resumes at the next byte. Overlong forms and surrogates
// are accepted as decoded. (Sequences decoding above U+10FFFF, which llama.cpp cannot re-encode, become U+FFFD.)
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
// Length of the UTF-8 sequence announced by a lead byte (1 for continuation or invalid bytes).
inline size_t utf8_len(unsigned char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// GPT-2's reversible map from bytes to printable characters (bytes_to_unicode in openai/gpt-2 encoder.py):
// printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in byte order.
const std::string& gpt2_byte_to_utf8(uint8_t b);
// The byte a GPT-2 character stands for, or -1.
int gpt2_cp_to_byte(uint32_t cp);

}  // namespace lowbit::tok
