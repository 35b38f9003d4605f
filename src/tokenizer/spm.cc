// SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm_session runs it:
//  1. special tokens are cut out (partition_special); a raw piece that starts the text or follows a special token
//     gets a leading space when add_space_prefix is set; spaces become U+2581 ("▁");
//  2. the piece is split into UTF-8 characters, and the adjacent pair whose concatenation is the token with the
//     highest score (leftmost on ties) is merged until no pair forms a token;
//  3. each final symbol is a token, or (a character missing from the vocabulary) its bytes as <0xNN> tokens.
#include <algorithm>
#include <cstdio>
#include <queue>

#include "lowbit/error.h"
#include "tokenizer/tokenizers.h"
#include "tokenizer/unicode.h"

namespace lowbit::tok {

namespace {

const std::string kSpace = "\xE2\x96\x81";  // U+2581

class SpmTokenizer final : public TokenizerBase {
 public:
  explicit SpmTokenizer(Vocab vocab) : TokenizerBase(std::move(vocab)) {
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
      int32_t id = vocab_.find(name);
      if (id < 0) id = vocab_.find(std::string(1, static_cast<char>(b)));  // llama.cpp's second choice
      if (id < 0) id = vocab_.unk;  // llama.cpp would abort here
      byte_token_[b] = id;
    }
    build_pieces();
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
    bool prev_special = true;  // the start of the text counts as "after a special token"
    for (const Fragment& f : partition_special(vocab_, text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string piece;
      if (vocab_.add_space_prefix && prev_special) piece = kSpace;
      for (char c : text.substr(f.offset, f.length)) {
        if (c == ' ')
          piece += kSpace;
        else
          piece.push_back(c);
      }
      encode_piece(piece, out);
      prev_special = false;
    }
    if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
    return out;
  }

 protected:
  std::string render_normal(int32_t id) const override {
    const uint32_t a = vocab_.attr[id];
    const std::string& t = vocab_.text[id];
    if (a & kAttrNormal) {
      std::string out;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, kSpace.size(), kSpace) == 0) {
          out.push_back(' ');
          i += kSpace.size();
        } else {
          out.push_back(t[i++]);
        }
      }
      return out;
    }
    if (a & kAttrByte) {
      unsigned v = 0;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
          std::sscanf(t.c_str() + 3, "%2x", &v) == 1)
        return std::string(1, static_cast<char>(v));
      fail("{}: byte token {} has the text '{}', expected <0xNN>", vocab_.path, id, t);
    }
    return {};
  }

 private:
  struct Symbol {
    uint32_t offset, n;
    int32_t prev, next;
  };

  void encode_piece(const std::string& s, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t off = 0; off < s.size();) {
      const size_t len = std::min(utf8_len(static_cast<unsigned char>(s[off])), s.size() - off);
      const int32_t idx = static_cast<int32_t>(sym.size());
      sym.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1,
                     off + len == s.size() ? -1 : idx + 1});
      off += len;
    }
    if (sym.empty()) return;

    struct Bigram {
      float score;
      int32_t left, right;
      uint32_t size;
    };
    auto worse = [](const Bigram& a, const Bigram& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
    auto consider = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const uint32_t size = sym[l].n + sym[r].n;
      const int32_t id = vocab_.find(std::string_view(s).substr(sym[l].offset, size));
      if (id >= 0) queue.push({vocab_.score[id], l, r, size});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) consider(i - 1, i);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // outdated
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      consider(l.prev, b.left);
      consider(b.left, l.next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
      const std::string_view t = std::string_view(s).substr(sym[i].offset, sym[i].n);
      const int32_t id = vocab_.find(t);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (unsigned char c : t)
        if (byte_token_[c] >= 0) out.push_back(byte_token_[c]);
    }
  }

  int32_t byte_token_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) { return std::make_unique<SpmTokenizer>(std::move(vocab)); }

}  // namespace lowbit::tok
