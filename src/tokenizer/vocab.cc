#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "lowbit/error.h"
#include "lowbit/gguf.h"

namespace lowbit::tok {

namespace {

constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";

// GGUF token types (llama_token_type) -> attributes.
uint32_t attr_from_type(int64_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool contains_any(const std::string& s, std::initializer_list<std::string_view> subs) {
  for (auto sub : subs)
    if (s.find(sub) != std::string::npos) return true;
  return false;
}

}  // namespace

void Vocab::load(const GgufFile& gguf, VocabType vtype, int pre_add_bos, bool pre_no_bos) {
  type = vtype;
  path = gguf.path();

  text = gguf.get_string_array(kTokensKey);
  const size_t n = text.size();
  if (n == 0) fail("{}: metadata '{}' is empty", path, kTokensKey);
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("{}: metadata '{}' has {} tokens, more than token ids can address", path, kTokensKey, n);

  score.assign(n, 0.0f);
  if (gguf.has(kScoresKey)) {
    const std::vector<double> s = gguf.get_float_array(kScoresKey);
    if (s.size() < n) fail("{}: metadata '{}' has {} entries for {} tokens", path, kScoresKey, s.size(), n);
    for (size_t i = 0; i < n; ++i) score[i] = static_cast<float>(s[i]);
  }
  attr.assign(n, kAttrNormal);
  if (gguf.has(kTypesKey)) {
    const std::vector<int64_t> t = gguf.get_int_array(kTypesKey);
    if (t.size() < n) fail("{}: metadata '{}' has {} entries for {} tokens", path, kTypesKey, t.size(), n);
    for (size_t i = 0; i < n; ++i) attr[i] = attr_from_type(t[i]);
  }

  to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (text[i].empty()) text[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
    auto [it, inserted] = to_id.emplace(text[i], static_cast<int32_t>(i));
    if (!inserted)
      fail("{}: metadata '{}' holds the token '{}' twice (ids {} and {})", path, kTokensKey, text[i], it->second, i);
  }

  // Defaults per model type (llama.cpp), then the pre-tokenizer's overrides, then the file's keys.
  if (type == VocabType::kBpe) {
    bos = 11;
    eos = 11;
    unk = -1;
    add_bos = false;
    add_space_prefix = false;
  } else {
    bos = 1;
    eos = 2;
    unk = 0;
    add_bos = true;
    add_space_prefix = true;
  }
  if (pre_add_bos == 1) add_bos = true;
  if (pre_no_bos) bos = -1;
  add_space_prefix = gguf.get_bool("tokenizer.ggml.add_space_prefix", add_space_prefix);

  const std::pair<const char*, int32_t*> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &bos},         {"tokenizer.ggml.eos_token_id", &eos},
      {"tokenizer.ggml.eot_token_id", &eot},         {"tokenizer.ggml.eom_token_id", &eom},
      {"tokenizer.ggml.unknown_token_id", &unk},     {"tokenizer.ggml.seperator_token_id", &sep},
      {"tokenizer.ggml.padding_token_id", &pad},     {"tokenizer.ggml.mask_token_id", &mask},
      {"tokenizer.ggml.fim_pre_token_id", &fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &fim_sep},
      {"tokenizer.ggml.prefix_token_id", &fim_pre},  {"tokenizer.ggml.suffix_token_id", &fim_suf},
      {"tokenizer.ggml.middle_token_id", &fim_mid},
  };
  for (auto [key, id] : id_keys) {
    if (*id >= 0 && static_cast<size_t>(*id) >= n) *id = -1;  // a default outside this vocabulary
    if (!gguf.has(key)) continue;
    const int64_t v = gguf.get_int(key, -1);
    if (v >= 0 && static_cast<uint64_t>(v) < n) *id = static_cast<int32_t>(v);  // llama.cpp ignores bad ids
  }
  add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token", add_bos);
  add_eos = gguf.get_bool("tokenizer.ggml.add_eos_token", add_eos);
  if (add_bos && bos < 0)
    fail("{}: tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set", path);
  if (add_eos && eos < 0)
    fail("{}: tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set", path);

  // Special tokens recognised by their text when the file does not name them; they become CONTROL tokens.
  // (llama.cpp scans a hash map, so with several candidates its pick is arbitrary; here the lowest id wins.)
  auto detect = [&](int32_t& id, std::initializer_list<std::string_view> texts) {
    if (id >= 0) return;
    for (size_t i = 0; i < n && id < 0; ++i)
      for (auto t : texts)
        if (text[i] == t) {
          id = static_cast<int32_t>(i);
          attr[i] |= kAttrControl;
          break;
        }
  };
  detect(eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
               "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
               "<end_of_utterance>"});
  detect(eom, {"<|eom_id|>"});
  detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>", "\xE2\x96\x81<PRE>",
                   "<|code_prefix|>", "<|prefix|>"});
  detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>", "\xE2\x96\x81<SUF>",
                   "<|code_suffix|>", "<|suffix|>"});
  detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>", "\xE2\x96\x81<MID>",
                   "<|code_middle|>", "<|middle|>"});
  detect(fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect(fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(fim_sep, {"<|file_sep|>"});

  // End of generation: FIM pad/repo/separator, every token whose text says "end of turn", EOS, EOT, EOM.
  eog.clear();
  for (int32_t id : {fim_pad, fim_rep, fim_sep})
    if (id >= 0) eog.insert(id);
  static constexpr std::string_view kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
      "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
      "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};
  for (size_t i = 0; i < n; ++i)
    for (auto t : kEogTexts)
      if (text[i] == t) {
        eog.insert(static_cast<int32_t>(i));
        attr[i] |= kAttrControl;
        break;
      }
  for (const char* t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {  // gpt-oss: always render
    int32_t id = find(t);
    if (id >= 0) attr[id] = kAttrUserDefined;
  }
  for (int32_t id : {eos, eot, eom})
    if (id >= 0) eog.insert(id);
  {
    // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
    auto in_eog = [&](std::string_view t) {
      int32_t id = find(t);
      return id >= 0 && eog.count(id) ? id : -1;
    };
    const int32_t end = in_eog("<|end|>");
    const bool has_call = in_eog("<|call|>") >= 0 || in_eog("<|calls|>") >= 0;
    if (end >= 0 && has_call && (in_eog("<|return|>") >= 0 || in_eog("<|flush|>") >= 0)) {
      eog.erase(end);
      attr[end] = kAttrUserDefined;
    }
    // gemma4 / paddleocr: "</s>" is not an end of generation there.
    const int32_t s = in_eog("</s>");
    if (s >= 0 && in_eog("<|tool_response>") >= 0) {
      eog.erase(s);
      attr[s] = kAttrNormal;
    }
  }

  special_by_length.clear();
  for (size_t i = 0; i < n; ++i)
    if (attr[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      special_by_length.push_back(static_cast<int32_t>(i));
  std::stable_sort(special_by_length.begin(), special_by_length.end(),
                   [&](int32_t a, int32_t b) { return text[a].size() > text[b].size(); });

  // Per-model strip attributes (llama.cpp keys them on names; they are not in GGUF).
  std::string name = gguf.get_string("general.name", "");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string pre = gguf.get_string("tokenizer.ggml.pre", "");
  const std::string arch = gguf.get_string("general.architecture", "");
  auto set_attr = [&](std::string_view t, uint32_t a, bool on) {
    int32_t id = find(t);
    if (id >= 0) attr[id] = on ? (attr[id] | a) : (attr[id] & ~a);
  };
  if (contains_any(pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (int32_t id : special_by_length) attr[id] |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set_attr("[MASK]", kAttrLstrip, true);
  }
}

std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : vocab.special_by_length) {
    const uint32_t a = vocab.attr[id];
    if (!parse_special && (a & (kAttrControl | kAttrUnknown))) continue;
    const std::string& st = vocab.text[id];
    bool any = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0 || text.substr(f.offset, f.length).find(st) == std::string_view::npos) continue;
      any = true;
      break;
    }
    if (!any) continue;

    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t off = f.offset, len = f.length;
      while (len > 0) {
        const size_t rel = text.substr(off, len).find(st);
        if (rel == std::string_view::npos) {
          next.push_back({-1, off, len});
          break;
        }
        size_t left = rel;
        if (a & kAttrLstrip)
          while (left > 0 && is_c_space(text[off + left - 1])) --left;
        if (left > 0) next.push_back({-1, off, left});
        next.push_back({id, 0, 0});
        size_t r_off = off + rel + st.size();
        size_t r_len = len - rel - st.size();
        if (a & kAttrRstrip)
          while (r_len > 0 && is_c_space(text[r_off])) {
            ++r_off;
            --r_len;
          }
        off = r_off;
        len = r_len;
      }
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace lowbit::tok
