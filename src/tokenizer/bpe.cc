// Byte-level BPE as llama.cpp's llm_tokenizer_bpe_session runs it:
//  1. special tokens are cut out (partition_special);
//  2. each remaining piece is decoded to code points (bad UTF-8 -> U+FFFD) and split into words by the
//     pre-tokenizer's regexes;
//  3. each word's UTF-8 bytes become GPT-2 characters, one symbol per byte, and the adjacent pair with the lowest
//     merge rank (leftmost on ties) is merged until no ranked pair is left;
//  4. every final symbol that is a token is emitted; one that is not falls back to its single bytes.
//
// Merging works on integer symbol ids: a token's id, or for a string that appears in a merge but is not a token,
// an id past the vocabulary. Two symbols merge iff their strings form a merge, so this is the string algorithm.
#include <array>
#include <queue>

#include "lowbit/error.h"
#include "tokenizer/tokenizers.h"
#include "tokenizer/unicode.h"

namespace lowbit::tok {

namespace {

class BpeTokenizer final : public TokenizerBase {
 public:
  BpeTokenizer(Vocab vocab, const PreTokenizerSpec& pre, const std::vector<std::string>& merges)
      : TokenizerBase(std::move(vocab)), splitter_(pre.regexes), ignore_merges_(pre.ignore_merges) {
    n_vocab_ = static_cast<int32_t>(vocab_.size());
    for (int b = 0; b < 256; ++b) byte_sym_[b] = symbol_of(gpt2_byte_to_utf8(static_cast<uint8_t>(b)));
    merges_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;  // llama.cpp keeps it as ("", ""), which never matches
      const std::string first = m.substr(0, sp), second = m.substr(sp + 1);
      const int32_t l = symbol_of(first), r = symbol_of(second), res = symbol_of(first + second);
      merges_.emplace(key(l, r), Merge{static_cast<int32_t>(i), res});  // a repeated pair keeps its first rank
    }
    build_pieces();
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
    WordCache cache;
    for (const Fragment& f : partition_special(vocab_, text, parse_special)) {
      if (f.token >= 0)
        out.push_back(f.token);
      else
        encode_text(text.substr(f.offset, f.length), out, cache);
    }
    if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
    return out;
  }

 protected:
  std::string render_normal(int32_t id) const override {
    if (!(vocab_.attr[id] & kAttrNormal)) return {};
    std::string out;
    for (uint32_t cp : decode_utf8(vocab_.text[id])) {
      const int b = gpt2_cp_to_byte(cp);
      if (b >= 0)
        out.push_back(static_cast<char>(b));
      else
        append_utf8(out, cp);  // not a GPT-2 byte character: keep it as text
    }
    return out;
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  using WordCache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

  static uint64_t key(int32_t l, int32_t r) { return (static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r); }

  int32_t symbol_of(const std::string& s) {
    const int32_t id = vocab_.find(s);
    if (id >= 0) return id;
    auto [it, inserted] = extra_id_.emplace(s, n_vocab_ + static_cast<int32_t>(extra_text_.size()));
    if (inserted) extra_text_.push_back(s);
    return it->second;
  }

  void encode_text(std::string_view text, std::vector<int32_t>& out, WordCache& cache) const {
    const std::vector<uint32_t> cps = decode_utf8(text);
    std::vector<uint32_t> lengths;
    splitter_.split(cps, lengths);
    std::string word;
    size_t start = 0;
    for (uint32_t len : lengths) {
      word.clear();
      for (size_t i = start; i < start + len; ++i) append_utf8(word, cps[i]);
      start += len;
      auto it = cache.find(std::string_view(word));
      if (it == cache.end()) {
        std::vector<int32_t> ids;
        encode_word(word, ids);
        it = cache.emplace(word, std::move(ids)).first;
      }
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }

  void emit_symbol(int32_t sym, std::vector<int32_t>& out) const {
    if (sym < n_vocab_) {
      out.push_back(sym);
      return;
    }
    for (char c : extra_text_[sym - n_vocab_]) {  // not a token: its single bytes, where they are tokens
      const int32_t id = vocab_.find(std::string_view(&c, 1));
      if (id >= 0) out.push_back(id);
    }
  }

  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    const size_t n = word.size();
    if (ignore_merges_) {
      std::string enc;
      for (unsigned char c : word) enc += gpt2_byte_to_utf8(c);
      const int32_t id = vocab_.find(enc);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<int32_t> sym(n), prev(n), next(n);
    std::vector<uint8_t> alive(n, 1);
    for (size_t i = 0; i < n; ++i) {
      sym[i] = byte_sym_[static_cast<unsigned char>(word[i])];
      prev[i] = static_cast<int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    }
    struct Cand {
      int32_t rank, left, right, lsym, rsym, result;
    };
    auto worse = [](const Cand& a, const Cand& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); };
    std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> queue(worse);
    auto consider = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      auto it = merges_.find(key(sym[l], sym[r]));
      if (it != merges_.end()) queue.push({it->second.rank, l, r, sym[l], sym[r], it->second.result});
    };
    for (size_t i = 1; i < n; ++i) consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
    while (!queue.empty()) {
      const Cand c = queue.top();
      queue.pop();
      if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right || sym[c.left] != c.lsym ||
          sym[c.right] != c.rsym)
        continue;  // outdated
      sym[c.left] = c.result;
      alive[c.right] = 0;
      next[c.left] = next[c.right];
      if (next[c.right] >= 0) prev[next[c.right]] = c.left;
      consider(prev[c.left], c.left);
      consider(c.left, next[c.left]);
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = next[i]) emit_symbol(sym[i], out);
  }

  RegexSplitter splitter_;
  bool ignore_merges_;
  int32_t n_vocab_ = 0;
  std::array<int32_t, 256> byte_sym_{};
  std::vector<std::string> extra_text_;
  std::unordered_map<std::string, int32_t> extra_id_;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab, const PreTokenizerSpec& pre,
                                              const std::vector<std::string>& merges) {
  return std::make_unique<BpeTokenizer>(std::move(vocab), pre, merges);
}

}  // namespace lowbit::tok
