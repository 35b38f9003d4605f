// Tokenizer::from_gguf and the parts both tokenizers share (pieces, decode).
#include "lowbit/tokenizer.h"

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "tokenizer/tokenizers.h"

namespace lowbit {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string model = gguf.get_string("tokenizer.ggml.model");
  if (model == "gpt2") {
    // llama.cpp uses "default" (with a warning) when the key is missing or empty.
    std::string pre_name = gguf.get_string("tokenizer.ggml.pre", "");
    if (pre_name.empty()) pre_name = "default";
    const tok::PreTokenizerSpec* pre = tok::find_pre_tokenizer(pre_name);
    if (!pre)
      fail("{}: metadata 'tokenizer.ggml.pre' = '{}' names a pre-tokenizer lowbit does not know (known: {})",
           gguf.path(), pre_name, tok::supported_pre_tokenizer_names());
    tok::Vocab vocab;
    vocab.model_name = model;
    vocab.pre_name = pre_name;
    vocab.load(gguf, tok::VocabType::kBpe, pre->add_bos, pre->no_bos);
    const std::vector<std::string> merges = gguf.get_string_array("tokenizer.ggml.merges");
    return tok::make_bpe_tokenizer(std::move(vocab), *pre, merges);
  }
  if (model == "llama") {
    tok::Vocab vocab;
    vocab.model_name = model;
    vocab.load(gguf, tok::VocabType::kSpm, -1, false);
    return tok::make_spm_tokenizer(std::move(vocab));
  }
  fail("{}: metadata 'tokenizer.ggml.model' = '{}' is not supported (lowbit reads 'gpt2' and 'llama')", gguf.path(),
       model);
}

namespace tok {

TokenizerBase::TokenizerBase(Vocab vocab) : vocab_(std::move(vocab)) {}

void TokenizerBase::build_pieces() {
  pieces_.resize(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) {
    const uint32_t a = vocab_.attr[i];
    pieces_[i] = (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) ? vocab_.text[i]
                                                                        : render_normal(static_cast<int32_t>(i));
  }
}

std::string TokenizerBase::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.size())
    fail("{}: token id {} is outside the vocabulary (0..{})", vocab_.path, id, vocab_.size() - 1);
  if (!render_special && (vocab_.attr[id] & (kAttrUnknown | kAttrControl))) return {};
  return pieces_[id];
}

std::string TokenizerBase::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  // With a space prefix, the first token's leading space is the one encode added (llama.cpp removes it too;
  // unlike llama.cpp, a leading BOS does not cancel the removal, so decode(encode(t, true, ...)) == t).
  bool strip_space = vocab_.add_space_prefix;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = token_to_piece(ids[i], render_special);
    if (strip_space && !(i == 0 && ids[i] == vocab_.bos)) {
      if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      strip_space = false;
    }
    out += piece;
  }
  return out;
}

}  // namespace tok
}  // namespace lowbit
