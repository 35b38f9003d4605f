// Pre-tokenization for byte-level BPE: the text is cut into words by a list of regexes, applied one after the
// other as llama.cpp's unicode_regex_split does — each regex splits every current piece into its matches and the
// unmatched gaps between them (both kept), and the next regex refines those pieces.
//
// Regexes that use Unicode classes (\p{L}, \p{N}, \p{P}, \p{M}, \p{S}, \p{Lu}...) run, as in llama.cpp, on a
// "collapsed" copy of the text with one byte per code point: ASCII stays itself, other code points become
// a byte naming their class (letter 0xD2, number 0xD1, punctuation 0xD3, mark 0xD4, symbol 0xD5, other 0xD0) or
// \v if they are white space; \p{X} becomes [<class byte><the ASCII members of X>]. This reproduces llama.cpp's
// results exactly, including its simplifications (all letter subclasses are one class; '~' is not in \p{S}).
// Regexes without \p run on the real code points (PCRE2 UTF mode, ASCII \s \d \b) with non-ASCII white space
// replaced by \v, as llama.cpp's std::wregex path does.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::tok {

struct PreTokenizerSpec {
  std::string_view kind;                 // llama.cpp's LLAMA_VOCAB_PRE_TYPE_* (without prefix), for messages
  std::vector<std::string_view> names;   // values of `tokenizer.ggml.pre` that select it
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;            // a word that is itself a token is emitted whole
  int add_bos = -1;                      // default for add_bos before `tokenizer.ggml.add_bos_token`: -1 keep
  bool no_bos = false;                   // the vocabulary has no BOS token by default (chatglm)
};

// nullptr if llama.cpp does not know the name (or lowbit does not support it).
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);
// Every supported name, for error messages.
std::string supported_pre_tokenizer_names();

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string_view>& regexes);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends to `lengths` the lengths, in code points, of the consecutive non-empty pieces of `cps`.
  void split(const std::vector<uint32_t>& cps, std::vector<uint32_t>& lengths) const;

  struct Compiled;

 private:
  std::vector<std::unique_ptr<Compiled>> regexes_;
  bool need_collapsed_ = false;
  bool need_utf_ = false;
};

}  // namespace lowbit::tok
