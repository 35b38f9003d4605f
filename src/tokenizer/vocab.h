// The vocabulary shared by both tokenizers: token texts, scores and attributes, the special ids, the end-of-
// generation set, and the partition of a text around special tokens. Built from GGUF metadata the way
// llama.cpp's llama_vocab::impl::load does (defaults per model type, auto-detected EOT/FIM tokens, per-model
// strip attributes).
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {
class GgufFile;
}

namespace lowbit::tok {

// llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

enum class VocabType { kBpe, kSpm };

struct Vocab {
  VocabType type = VocabType::kBpe;
  std::string path;        // the GGUF file, for messages
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre as given ("default" when absent); "" for llama

  std::vector<std::string> text;
  std::vector<float> score;
  std::vector<uint32_t> attr;
  TokenMap to_id;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  std::set<int32_t> eog;
  // CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first: the order special texts are matched in.
  std::vector<int32_t> special_by_length;

  size_t size() const { return text.size(); }
  int32_t find(std::string_view s) const {
    auto it = to_id.find(s);
    return it == to_id.end() ? -1 : it->second;
  }

  // Loads tokens, types, scores and special ids. `pre_add_bos`/`pre_no_bos` are the pre-tokenizer's overrides
  // of the model type defaults (see PreTokenizerSpec).
  void load(const GgufFile& gguf, VocabType type, int pre_add_bos, bool pre_no_bos);
};

// A piece of the input: either raw text [offset, offset + length) or an already-decided token.
struct Fragment {
  int32_t token;  // -1 for raw text
  size_t offset;
  size_t length;
};

// llama.cpp's tokenizer_st_partition: special token texts are cut out of the raw text, longest first.
// User-defined tokens are always recognised; CONTROL and UNKNOWN ones only when `parse_special`.
// LSTRIP/RSTRIP attributes drop the white space before/after a match.
std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace lowbit::tok
