// Tokenizers built from GGUF metadata, matching llama.cpp's llama-vocab:
//  - `tokenizer.ggml.model = gpt2`: byte-level BPE, pre-tokenized with the regexes llama.cpp uses for the
//    name in `tokenizer.ggml.pre` (PCRE2, UTF mode, Unicode properties), merges ranked by `tokenizer.ggml.merges`.
//  - `tokenizer.ggml.model = llama`: SentencePiece-style BPE (scores, byte fallback <0xNN>, ▁ for spaces).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Throws lowbit::Error naming the file and key if the metadata is missing or malformed.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);

  // add_special: add BOS (and EOS) where the vocabulary says so (llama.cpp's add_special).
  // parse_special: recognise special/control token texts such as "<|im_start|>" inside `text`.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // Concatenated pieces; special/control tokens are rendered as their text only if `render_special`.
  virtual std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const = 0;
  // Raw bytes of one token (may be a partial UTF-8 sequence for byte-level vocabularies).
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;

  virtual size_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;  // -1 if none
  virtual bool add_bos() const = 0;    // whether encode(add_special=true) prepends BOS
  virtual bool is_eog(int32_t id) const = 0;  // end-of-generation (EOS, EOT, <|im_end|>, ...)
  virtual int32_t token_id(std::string_view text) const = 0;  // -1 if not a token
  virtual std::string model_name() const = 0;  // "gpt2" / "llama"
  virtual std::string pre_name() const = 0;    // pre-tokenizer name, "" for llama
};

}  // namespace lowbit
