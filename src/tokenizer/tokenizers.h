// The two concrete tokenizers behind lowbit::Tokenizer (internal to src/tokenizer).
#pragma once
#include <memory>

#include "lowbit/tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace lowbit::tok {

// Byte-level BPE (`tokenizer.ggml.model = gpt2`); `merges` as in `tokenizer.ggml.merges`.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab, const PreTokenizerSpec& pre,
                                              const std::vector<std::string>& merges);
// SentencePiece-style BPE (`tokenizer.ggml.model = llama`).
std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);

// Shared by both: the piece of a token as llama.cpp's token_to_piece renders it, and decode built on it.
class TokenizerBase : public Tokenizer {
 public:
  explicit TokenizerBase(Vocab vocab);

  std::string decode(const std::vector<int32_t>& ids, bool render_special) const override;
  std::string token_to_piece(int32_t id, bool render_special) const override;
  size_t vocab_size() const override { return vocab_.size(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool is_eog(int32_t id) const override { return id >= 0 && vocab_.eog.count(id) != 0; }
  int32_t token_id(std::string_view text) const override { return vocab_.find(text); }
  std::string model_name() const override { return vocab_.model_name; }
  std::string pre_name() const override { return vocab_.pre_name; }

 protected:
  // Fills pieces_ (call once the type-specific state is ready).
  void build_pieces();
  virtual std::string render_normal(int32_t id) const = 0;

  Vocab vocab_;
  std::vector<std::string> pieces_;  // piece of every token with render_special = true
};

}  // namespace lowbit::tok
