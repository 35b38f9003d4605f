#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lowbit/error.h"
#include "tokenizer/unicode.h"

namespace lowbit::tok {

namespace {

// The regexes llama.cpp's llm_tokenizer_bpe uses per pre-tokenizer type (src/llama-vocab.cpp), written as regex
// text: non-ASCII characters as \x{...}, control characters as \r \n \t. Where llama.cpp rewrote the model's
// original pattern (e.g. (?i:'s|...) as '[sS]|..., or \p{Lu} lookalikes for tekken/gpt-4o), the rewritten form
// is used, because that is what llama.cpp runs.

constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kQwen35 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|)"
    R"( ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kJais2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|)"
    R"(\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})";

constexpr std::string_view kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295})"
    R"(-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E})"
    R"(-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0})"
    R"(-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77})"
    R"(\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50})"
    R"(-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2})"
    R"(-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128})"
    R"(\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680})"
    R"(-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
    R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8})"
    R"(-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepseekLlmPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr std::string_view kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr std::string_view kDeepseek3Cjk = R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)";
constexpr std::string_view kDeepseek3Main =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)"
    R"( ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kSpark25Main =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)"
    R"( ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)";

constexpr std::string_view kYoutuCjk =
    R"([\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|)"
    R"([\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F})"
    R"(\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)";
constexpr std::string_view kYoutuMain =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|)"
    R"('[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|)"
    R"('[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|)"
    R"(\s+)";
constexpr std::string_view kTinyAyaMain =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|)"
    R"('[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|)"
    R"('[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|)"
    R"(\s+(?!\S)|\s+)";

constexpr std::string_view kPoro = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";

constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|)"
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|)"
    R"(\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|)"
    R"('[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|)"
    R"('[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|)"
    R"(\s+(?!\S)|\s+)";
constexpr std::string_view kGraniteEmbMulti =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|)"
    R"('[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|)"
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|)"
    R"('[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kBailingMoe =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|)"
    R"(\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr std::string_view kSeedCoder =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}|)"
    R"( ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kUfakzeka =
    R"([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kExaoneMoe =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|)"
    R"([^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|)"
    R"(\s+(?!\S)|\s+)";
constexpr std::string_view kMiniCpm5Main =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::vector<PreTokenizerSpec>& specs() {
  static const std::vector<PreTokenizerSpec> k = {
      {"DEFAULT", {"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}},
      {"LLAMA3",
       {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       {kLlama3},
       /*ignore_merges=*/true,
       /*add_bos=*/1},
      {"DBRX/SMAUG", {"dbrx", "smaug-bpe"}, {kLlama3}},
      {"CHATGLM4", {"chatglm-bpe", "glm4"}, {kLlama3}, false, -1, /*no_bos=*/true},
      {"JAIS2", {"jais-2"}, {kJais2}},
      {"DEEPSEEK_LLM",
       {"deepseek-llm"},
       {R"([\r\n])", kDeepseekLlmLetters, kDeepseekLlmPunct, R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"}},
      {"DEEPSEEK_CODER",
       {"deepseek-coder"},
       {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}},
      {"DEEPSEEK3_LLM", {"deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"},
       {R"(\p{N}{1,3})", kDeepseek3Cjk, kDeepseek3Main}},
      {"SPARK2_5", {"spark2_5"}, {R"(\p{N}{1,3})", kDeepseek3Cjk, kSpark25Main, R"(\p{N})"}},
      {"YOUTU", {"youtu"}, {kYoutuCjk, kYoutuMain}, /*ignore_merges=*/true},
      {"FALCON", {"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}},
      {"STARCODER",
       {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
       {R"(\p{N})", kGpt2}},
      {"GPT2",
       {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code",
        "roberta-bpe", "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo", "jais", "exaone4", "trillion",
        "granite-docling"},
       {kGpt2}},
      {"QWEN2",
       {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"},
       {kQwen2}},
      {"QWEN35", {"qwen35"}, {kQwen35}},
      {"PORO", {"poro-chat", "bloom", "gpt3-finnish"}, {kPoro}},
      {"VIKING", {"viking"}, {kPoro, R"(\p{N})"}},
      {"TEKKEN", {"tekken"}, {kTekken}, /*ignore_merges=*/true, /*add_bos=*/1},
      {"CHAMELEON",
       {"chameleon"},
       {R"(<sentinel:[0-9]+>)", R"((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)", R"(([\t\n]|    |  ))", R"(\p{N})",
    R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
       false,
       /*add_bos=*/1},
      {"GPT4O", {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}},
      {"GRANITE_EMB_MULTI", {"granite-embed-multi-97m"}, {kGraniteEmbMulti}, /*ignore_merges=*/true},
      {"TINY_AYA", {"tiny_aya", "cohere2moe"}, {R"(\d{1,3}(?=(?:\d{3})*\b))", kTinyAyaMain}},
      {"SUPERBPE", {"superbpe"}, {R"(\p{N}+)", R"((?=(\d{3})+(?!\d)))"}},
      {"BAILINGMOE", {"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailingMoe}},
      {"SEED_CODER", {"seed-coder"}, {kSeedCoder}},
      {"UFAKZEKA", {"ufakzeka"}, {kUfakzeka}},
      {"LAGUNA", {"laguna"}, {R"([^\n]+|[\n]+)", kQwen2}},
      {"EXAONE_MOE", {"exaone-moe"}, {kExaoneMoe}},
      {"MINICPM5", {"minicpm5"}, {R"(\p{N}{1,3})", kMiniCpm5Main}, /*ignore_merges=*/true},
  };
  return k;
}

// Unicode class escapes llama.cpp rewrites, with the class byte and the ASCII members of the class.
struct ClassEscape {
  std::string_view escape;
  std::string_view replacement;  // contents of a bracket expression
};
constexpr ClassEscape kClassEscapes[] = {
    {R"(\p{N})", R"(\xD10-9)"},
    {R"(\p{L})", R"(\xD2A-Za-z)"},
    {R"(\p{P})", R"(\xD3!-#%-*,-/:-;?-@\[-\]_\{\})"},
    {R"(\p{M})", R"(\xD4)"},
    {R"(\p{S})", R"(\xD5\$\+<->^`\|)"},  // llama.cpp leaves '~' out
    {R"(\p{Lu})", R"(\xD2A-Za-z)"},
    {R"(\p{Ll})", R"(\xD2A-Za-z)"},
    {R"(\p{Lt})", R"(\xD2A-Za-z)"},
    {R"(\p{Lm})", R"(\xD2A-Za-z)"},
    {R"(\p{Lo})", R"(\xD2A-Za-z)"},
};

bool uses_classes(std::string_view re) {
  for (const auto& c : kClassEscapes)
    if (re.find(c.escape) != std::string_view::npos) return true;
  return false;
}

// The collapsed form of a pattern (see the header): \p{X} -> [<byte><ASCII members>] outside brackets, the bare
// members inside them. Bracket tracking follows llama.cpp (an unescaped '[' opens, an unescaped ']' closes).
std::string collapse_pattern(std::string_view re) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '[' && (i == 0 || re[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && c == ']' && re[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (c == '\\' && re.substr(i, 3) == R"(\p{)") {
      const size_t close = re.find('}', i + 3);
      if (close != std::string_view::npos) {
        const std::string_view esc = re.substr(i, close - i + 1);
        const ClassEscape* hit = nullptr;
        for (const auto& ce : kClassEscapes)
          if (ce.escape == esc) hit = &ce;
        if (hit) {
          if (!inside) out += '[';
          out += hit->replacement;
          if (!inside) out += ']';
          i = close;
          continue;
        }
      }
    }
    out += c;
  }
  return out;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  for (const auto& s : specs())
    for (auto n : s.names)
      if (n == name) return &s;
  return nullptr;
}

std::string supported_pre_tokenizer_names() {
  std::string out;
  for (const auto& s : specs())
    for (auto n : s.names) {
      if (!out.empty()) out += ", ";
      out += n;
    }
  return out;
}

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  bool collapsed = false;
  std::string pattern;  // as compiled, for messages
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string_view>& regexes) {
  for (auto re : regexes) {
    auto c = std::make_unique<Compiled>();
    c->collapsed = uses_classes(re);
    c->pattern = c->collapsed ? collapse_pattern(re) : std::string(re);
    // DOLLAR_ENDONLY: '$' means the end of the piece, as in ECMAScript (std::regex), not "before a final \n".
    uint32_t options = PCRE2_DOLLAR_ENDONLY | (c->collapsed ? 0 : PCRE2_UTF);
    int err = 0;
    PCRE2_SIZE off = 0;
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(c->pattern.data()), c->pattern.size(), options, &err, &off,
                            nullptr);
    if (!c->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      fail("tokenizer: cannot compile pre-tokenizer regex '{}' at offset {}: {}", c->pattern, off,
           reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);  // optional: without JIT the interpreter runs
    (c->collapsed ? need_collapsed_ : need_utf_) = true;
    regexes_.push_back(std::move(c));
  }
}

RegexSplitter::~RegexSplitter() = default;

namespace {

struct MatchData {
  pcre2_match_data* md;
  MatchData() : md(pcre2_match_data_create(32, nullptr)) {
    if (!md) fail("tokenizer: out of memory allocating PCRE2 match data");
  }
  ~MatchData() { pcre2_match_data_free(md); }
};

// One match attempt; retries without JIT when the JIT stack or a limit is exhausted (very long pieces).
int match_once(const RegexSplitter::Compiled& rx, const unsigned char* subject, size_t length, size_t start,
               uint32_t options, pcre2_match_data* md) {
  int rc = pcre2_match(rx.code, subject, length, start, options, md, nullptr);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    rc = pcre2_match(rx.code, subject, length, start, options | PCRE2_NO_JIT, md, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      fail("tokenizer: pre-tokenizer regex '{}' failed on a {}-byte piece: {}", rx.pattern, length,
           reinterpret_cast<const char*>(msg));
    }
  }
  return rc;
}

}  // namespace

void RegexSplitter::split(const std::vector<uint32_t>& cps, std::vector<uint32_t>& lengths) const {
  const size_t n = cps.size();
  if (n == 0) return;

  // Collapsed text: one byte per code point.
  std::string collapsed;
  if (need_collapsed_) {
    collapsed.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t cp = cps[i];
      char b;
      if (cp < 128) {
        b = static_cast<char>(cp);
      } else if (is_whitespace(cp)) {
        b = '\v';
      } else {
        switch (char_class(cp)) {
          case CharClass::kNumber: b = '\xD1'; break;
          case CharClass::kLetter: b = '\xD2'; break;
          case CharClass::kPunct: b = '\xD3'; break;
          case CharClass::kMark: b = '\xD4'; break;
          case CharClass::kSymbol: b = '\xD5'; break;
          default: b = '\xD0'; break;
        }
      }
      collapsed[i] = b;
    }
  }
  // UTF-8 text for the regexes without classes, with the byte offset of every code point and back.
  std::string utf;
  std::vector<uint32_t> cp_to_byte, byte_to_cp;
  if (need_utf_) {
    utf.reserve(n);
    cp_to_byte.resize(n + 1);
    for (size_t i = 0; i < n; ++i) {
      cp_to_byte[i] = static_cast<uint32_t>(utf.size());
      uint32_t cp = cps[i];
      if (cp > 0x7F && is_whitespace(cp)) cp = '\v';
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // not encodable; matches nothing either way
      append_utf8(utf, cp);
    }
    cp_to_byte[n] = static_cast<uint32_t>(utf.size());
    byte_to_cp.assign(utf.size() + 1, 0);
    for (size_t i = 0; i <= n; ++i) byte_to_cp[cp_to_byte[i]] = static_cast<uint32_t>(i);
  }

  MatchData md;
  std::vector<uint32_t> cur{static_cast<uint32_t>(n)}, next;
  for (const auto& rxp : regexes_) {
    const Compiled& rx = *rxp;
    next.clear();
    next.reserve(cur.size() * 2);
    size_t frag_start = 0;  // in code points
    for (uint32_t frag_len : cur) {
      const unsigned char* subject;
      size_t length;
      if (rx.collapsed) {
        subject = reinterpret_cast<const unsigned char*>(collapsed.data()) + frag_start;
        length = frag_len;
      } else {
        subject = reinterpret_cast<const unsigned char*>(utf.data()) + cp_to_byte[frag_start];
        length = cp_to_byte[frag_start + frag_len] - cp_to_byte[frag_start];
      }
      auto to_cp = [&](size_t byte_off) -> size_t {  // offset within the piece, in code points
        if (rx.collapsed) return byte_off;
        return byte_to_cp[cp_to_byte[frag_start] + byte_off] - frag_start;
      };
      auto emit = [&](size_t from, size_t to) {  // byte offsets within the piece
        const size_t len = to_cp(to) - to_cp(from);
        if (len > 0) next.push_back(static_cast<uint32_t>(len));
      };

      // std::regex_iterator semantics: after an empty match, first try a non-empty match anchored at the same
      // place, and if there is none, search again one character further on.
      size_t pos = 0, last_end = 0;
      uint32_t options = 0;
      while (pos <= length) {
        const int rc = match_once(rx, subject, length, pos, options | (rx.collapsed ? 0 : PCRE2_NO_UTF_CHECK),
                                  md.md);
        if (rc == PCRE2_ERROR_NOMATCH) {
          if (options == 0 || pos >= length) break;
          pos += rx.collapsed ? 1 : utf8_len(subject[pos]);
          options = 0;
          continue;
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.md);
        const size_t ms = ov[0], me = ov[1];
        if (ms > last_end) emit(last_end, ms);
        emit(ms, me);
        last_end = me;
        pos = me;
        options = (me == ms) ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
      }
      if (last_end < length) emit(last_end, length);
      frag_start += frag_len;
    }
    cur.swap(next);
  }
  lengths.insert(lengths.end(), cur.begin(), cur.end());
}

}  // namespace lowbit::tok
