// Recipe::parse: torchchat's --quantize JSON (inline or a file) → QuantSpecs, validated strictly.
//
// torchchat itself ignores unknown keys inside a scheme with a printed warning and fills unset arguments from
// each quantizer's Python defaults; a recipe stored in a bundle must mean one thing, so here every key is
// checked, every value's type is checked, and a default is used only where torchchat's own default is a
// fixed, documented number (linear:int8 groupsize 0, linear:a8w4dq groupsize 256, embedding bitwidth 8 /
// groupsize 0, linear:a8wxdq has_weight_zeros false). Everything else must be spelled out.
#include "quant/recipe.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "lowbit/error.h"

namespace lowbit {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxGroupSize = 65536;      // no real row is longer; larger values are typos
constexpr uintmax_t kMaxFileBytes = 1 << 20;  // recipes are a few hundred bytes
constexpr int kMaxDepth = 16;                 // recipes nest two levels; deeper input is not a recipe

const char* const kValidKeys =
    "embedding, embedding:wx, executor, linear:a8w4dq, linear:a8wxdq, linear:int4, linear:int8, output, precision";
const char* const kSchemeKeys = "linear:int8, linear:int4, linear:a8w4dq, linear:a8wxdq, embedding, embedding:wx";

// Errors: "<where>: <message>", where = "recipe" for inline JSON or the file's path.
struct Ctx {
  std::string where;
  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) const {
    throw Error(where + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
};

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

// Cuts s to at most n bytes (plus "..."), not inside a UTF-8 sequence.
std::string shorten(std::string s, size_t n = 48) {
  if (s.size() <= n) return s;
  size_t cut = n - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

// A value as it appears in JSON (strings quoted and escaped), shortened so an error message stays one line.
std::string show(const Json& v) { return one_line(shorten(v.dump())); }

// A key as errors name it: bare when it is plain printable ASCII, else as an escaped JSON string.
std::string key_name(const std::string& k) {
  bool plain = !k.empty();
  for (char c : k) plain = plain && c > ' ' && c < 0x7f && c != '"';
  return plain ? shorten(k) : show(Json(k));
}

// nlohmann's parse messages quote the raw bytes last read: keep them on one line and ASCII.
std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f)
      out += fmt::format("\\x{:02x}", u);
    else
      out += c;
  }
  return out;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The parameters one scheme takes. Every scheme accepts "groupsize" and "bitwidth"; in the fixed-width schemes
// (linear:int8, linear:int4, linear:a8w4dq) "bitwidth" may only repeat the scheme's width.
struct SchemeRule {
  const char* key;
  int bits = 0;                        // the fixed width, or the default width when bitwidth is optional
  std::vector<int> bits_allowed = {};  // empty: width fixed at `bits`
  bool bitwidth_required = false;
  bool groupsize_required = false;
  int default_group = 0;
  bool zeros_key = false;  // "has_weight_zeros" accepted (default false); otherwise zeros are `has_zeros`
  bool has_zeros = false;
  bool dynamic = false;
  const char* example = "";
};

const std::vector<SchemeRule>& scheme_rules() {
  static const std::vector<SchemeRule> rules = {
      // torchchat's WeightOnlyInt8QuantHandler: bitwidth default 8, groupsize default None = channelwise.
      {.key = "linear:int8", .bits = 8, .default_group = 0, .has_zeros = true, .example = R"({"groupsize": 0})"},
      // torchchat reads q_kwargs["groupsize"] unconditionally (its CUDA path): required.
      {.key = "linear:int4",
       .bits = 4,
       .groupsize_required = true,
       .has_zeros = true,
       .example = R"({"groupsize": 32})"},
      // torchao's Int8DynActInt4WeightQuantizer(groupsize=256), symmetric weights.
      {.key = "linear:a8w4dq", .bits = 4, .default_group = 256, .dynamic = true, .example = R"({"groupsize": 256})"},
      // torchao's experimental quantizer fills bitwidth and groupsize only with a warning: required here.
      {.key = "linear:a8wxdq",
       .bits_allowed = {1, 2, 3, 4, 5, 6, 7, 8},
       .bitwidth_required = true,
       .groupsize_required = true,
       .zeros_key = true,
       .dynamic = true,
       .example = R"({"bitwidth": 4, "groupsize": 32, "has_weight_zeros": false})"},
      // torchchat's EmbeddingOnlyQuantHandler(bitwidth=8, groupsize=None): symmetric; 4 and 8 there, 2 also here.
      {.key = "embedding",
       .bits = 8,
       .bits_allowed = {2, 4, 8},
       .default_group = 0,
       .example = R"({"bitwidth": 4, "groupsize": 32})"},
      {.key = "embedding:wx",
       .bits_allowed = {1, 2, 3, 4, 5, 6, 7, 8},
       .bitwidth_required = true,
       .groupsize_required = true,
       .has_zeros = true,
       .example = R"({"bitwidth": 4, "groupsize": 32})"},
  };
  return rules;
}

const SchemeRule* find_rule(const std::string& key) {
  for (const auto& r : scheme_rules())
    if (key == r.key) return &r;
  return nullptr;
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? (i + 1 == v.size() ? " or " : ", ") : "") + std::to_string(v[i]);
  return s;
}

// An integer-valued key: rejects booleans, strings, fractions (32.5 and also 32.0), and returns values beyond
// int64 as INT64_MAX (the range checks that follow then reject them).
std::optional<int64_t> get_int(const Ctx& ctx, const Json& obj, const std::string& owner, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  const Json& v = *it;
  if (!v.is_number_integer())
    ctx.fail("{}.{}: expected an integer, got {} ({})", owner, key, show(v),
             v.is_number() ? "floating-point" : v.type_name());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(u);
  }
  return v.get<int64_t>();
}

QuantSpec parse_scheme(const Ctx& ctx, const SchemeRule& rule, const Json& params, const std::string& owner) {
  // owner: the name errors use for this object ("linear:int4", or "output" for the output override).
  std::set<std::string> allowed = {"bitwidth", "groupsize"};
  if (rule.zeros_key) allowed.insert("has_weight_zeros");
  for (const auto& [k, v] : params.items()) {
    if (owner == "output" && k == "scheme") continue;
    if (!allowed.count(k)) {
      std::string takes;
      for (const auto& a : allowed) takes += (takes.empty() ? "" : ", ") + a;
      ctx.fail("{}.{}: unknown key; {} takes {}", owner, key_name(k), rule.key, takes);
    }
  }

  QuantSpec spec;
  spec.scheme = rule.key;
  spec.has_zeros = rule.has_zeros;
  spec.dynamic_activations = rule.dynamic;

  const std::optional<int64_t> bits = get_int(ctx, params, owner, "bitwidth");
  if (rule.bits_allowed.empty()) {
    spec.bits = rule.bits;
    if (bits && *bits != rule.bits)
      ctx.fail("{}.bitwidth: must be {} for {} (got {}); other widths: {}", owner, rule.bits, rule.key,
               show(params.at("bitwidth")),
               rule.dynamic ? "linear:a8wxdq"
               : *bits == 8 ? "linear:int8"
               : *bits == 4 ? "linear:int4"
                            : "linear:a8wxdq");
  } else if (!bits) {
    if (rule.bitwidth_required) ctx.fail("{}.bitwidth: missing (required; {})", owner, join_ints(rule.bits_allowed));
    spec.bits = rule.bits;
  } else {
    bool ok = false;
    for (int b : rule.bits_allowed) ok = ok || b == *bits;
    if (!ok)
      ctx.fail("{}.bitwidth: must be {} (got {})", owner, join_ints(rule.bits_allowed), show(params.at("bitwidth")));
    spec.bits = static_cast<int>(*bits);
  }

  const std::optional<int64_t> group = get_int(ctx, params, owner, "groupsize");
  if (!group) {
    if (rule.groupsize_required)
      ctx.fail("{}.groupsize: missing (required, e.g. {}: {}; 0 = channelwise)", owner, rule.key, rule.example);
    spec.group_size = rule.default_group;
  } else {
    if (*group < 0) ctx.fail("{}.groupsize: must be >= 0 (0 = channelwise), got {}", owner, *group);
    if (*group > kMaxGroupSize)
      ctx.fail("{}.groupsize: must be at most {}, got {}", owner, kMaxGroupSize, show(params.at("groupsize")));
    spec.group_size = static_cast<int>(*group);
  }

  if (rule.zeros_key) {
    spec.has_zeros = false;
    if (auto it = params.find("has_weight_zeros"); it != params.end()) {
      if (!it->is_boolean()) ctx.fail("{}.has_weight_zeros: expected true or false, got {}", owner, show(*it));
      spec.has_zeros = it->get<bool>();
    }
  }
  return spec;
}

WeightDtype parse_precision(const Ctx& ctx, const Json& v) {
  if (!v.is_object()) ctx.fail("precision: expected an object such as {{\"dtype\": \"bf16\"}}, got {}", show(v));
  for (const auto& [k, _] : v.items())
    if (k != "dtype") ctx.fail("precision.{}: unknown key; precision takes dtype", key_name(k));
  auto it = v.find("dtype");
  if (it == v.end()) ctx.fail("precision.dtype: missing (fp32, bf16 or fp16)");
  if (!it->is_string()) ctx.fail("precision.dtype: expected a string, got {}", show(*it));
  const std::string d = it->get<std::string>();
  // torchchat's name_to_dtype spellings, plus lowbit's own --dtype ones (f32, f16).
  if (d == "fp32" || d == "float32" || d == "float" || d == "f32") return WeightDtype::F32;
  if (d == "bf16" || d == "bfloat16") return WeightDtype::BF16;
  if (d == "fp16" || d == "float16" || d == "half" || d == "f16") return WeightDtype::F16;
  if (d == "fast" || d == "fast16")
    ctx.fail(
        "precision.dtype: \"{}\" picks a dtype per machine in torchchat; a lowbit recipe names one: fp32, bf16 "
        "or fp16",
        d);
  ctx.fail("precision.dtype: {} is not one of fp32, float32, float, bf16, bfloat16, fp16, float16, half", show(*it));
}

std::string parse_executor(const Ctx& ctx, const Json& v) {
  if (!v.is_object()) ctx.fail("executor: expected an object such as {{\"accelerator\": \"cpu\"}}, got {}", show(v));
  for (const auto& [k, _] : v.items())
    if (k != "accelerator") ctx.fail("executor.{}: unknown key; executor takes accelerator", key_name(k));
  auto it = v.find("accelerator");
  if (it == v.end()) ctx.fail("executor.accelerator: missing (lowbit supports only \"cpu\")");
  if (!it->is_string()) ctx.fail("executor.accelerator: expected a string, got {}", show(*it));
  if (it->get<std::string>() != "cpu")
    ctx.fail("executor.accelerator: {} is not supported; lowbit runs only on the CPU (\"cpu\")", show(*it));
  return "cpu";
}

// "output": "none" | {"scheme": <scheme key, or its short form without "linear:">, ...that scheme's keys}.
void parse_output(const Ctx& ctx, const Json& v, Recipe& r) {
  if (v.is_string() && v.get<std::string>() == "none") {
    r.output_unquantized = true;
    return;
  }
  if (!v.is_object())
    ctx.fail("output: expected \"none\" or an object such as {{\"scheme\": \"linear:int8\", \"groupsize\": 0}}, got {}",
             show(v));
  auto it = v.find("scheme");
  if (it == v.end()) ctx.fail("output.scheme: missing (one of {})", kSchemeKeys);
  if (!it->is_string()) ctx.fail("output.scheme: expected a string, got {}", show(*it));
  std::string name = it->get<std::string>();
  const SchemeRule* rule = find_rule(name);
  if (!rule && name.find(':') == std::string::npos) rule = find_rule("linear:" + name);  // "int8" = "linear:int8"
  if (!rule) ctx.fail("output.scheme: {} is not one of {}", show(*it), kSchemeKeys);
  r.output = parse_scheme(ctx, *rule, v, "output");
}

// Parses JSON text, rejecting duplicate keys (nlohmann would keep the last silently) and absurd nesting.
Json parse_json(const Ctx& ctx, const std::string& text) {
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string current;
  };
  std::vector<Frame> frames;
  auto path_to = [&](const std::string& key) {
    std::string p;
    for (size_t i = 0; i + 1 < frames.size(); ++i)
      if (frames[i].is_object) p += key_name(frames[i].current) + ".";
    return p + key_name(key);
  };
  Json::parser_callback_t cb = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxDepth) ctx.fail("nested deeper than {} levels; not a recipe", kMaxDepth);
        frames.push_back({event == Json::parse_event_t::object_start, {}, {}});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (!frames.empty()) {
          if (!frames.back().keys.insert(key).second) ctx.fail("{}: duplicate key", path_to(key));
          frames.back().current = key;
        }
        break;
      }
      case Json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, cb);
  } catch (const Json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
    std::string msg = e.what();
    if (msg.rfind("[json.exception.", 0) == 0) {
      if (size_t close = msg.find("] "); close != std::string::npos) msg = msg.substr(close + 2);
    }
    ctx.fail("invalid JSON: {}", sanitize(msg));
  }
}

std::string read_recipe_file(const Ctx& ctx, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st))
    ctx.fail(
        "cannot open recipe file: No such file or directory (a recipe is a JSON object starting with '{{' or "
        "the path of a file holding one)");
  if (fs::is_directory(st)) ctx.fail("is a directory, not a recipe file");
  if (!fs::is_regular_file(st)) ctx.fail("not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) ctx.fail("cannot read recipe file: {}", ec.message());
  if (size > kMaxFileBytes)
    ctx.fail("recipe file is {} bytes; recipes are small JSON objects (limit {})", size, kMaxFileBytes);
  std::ifstream f(path, std::ios::binary);
  if (!f) ctx.fail("cannot open recipe file: {}", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) ctx.fail("cannot read recipe file: {}", std::strerror(errno));
  return ss.str();
}

}  // namespace

Recipe Recipe::parse(const std::string& text) {
  const std::string t = trim(text);
  Ctx ctx{"recipe"};
  if (t.empty())
    ctx.fail(
        "empty; expected a JSON object such as {{\"linear:int4\": {{\"groupsize\": 32}}}} or the path of a JSON "
        "file");
  std::string body = t;
  // Inline JSON is an object; '[' is taken as JSON too, so a top-level array is reported as such rather than
  // as a missing file.
  if (t[0] != '{' && t[0] != '[') {
    ctx.where = t;
    body = read_recipe_file(ctx, t);
  }
  const Json j = parse_json(ctx, body);
  if (!j.is_object()) ctx.fail("top level must be a JSON object, got {} {}", j.type_name(), show(j));

  Recipe r;
  std::vector<std::string> linear_keys, embedding_keys;
  for (const auto& [key, v] : j.items()) {  // sorted by key (nlohmann's std::map), so errors are deterministic
    if (const SchemeRule* rule = find_rule(key)) {
      if (!v.is_object()) ctx.fail("{}: expected an object such as {}, got {}", key, rule->example, show(v));
      QuantSpec spec = parse_scheme(ctx, *rule, v, key);
      if (key.rfind("linear:", 0) == 0) {
        linear_keys.push_back(key);
        r.linear = spec;
      } else {
        embedding_keys.push_back(key);
        r.embedding = spec;
      }
    } else if (key == "output") {
      parse_output(ctx, v, r);
    } else if (key == "precision") {
      r.precision = parse_precision(ctx, v);
      r.precision_given = true;
    } else if (key == "executor") {
      r.accelerator = parse_executor(ctx, v);
    } else if (key == "linear:afpwx") {
      ctx.fail(
          "unknown key \"{}\": torchchat's linear:afpwx runs only on Apple MPS; for weight-only low-bit use "
          "linear:int4 or linear:a8wxdq (valid keys: {})",
          key, kValidKeys);
    } else {
      ctx.fail("unknown key {}; valid keys: {}", show(Json(key)), kValidKeys);
    }
  }
  if (linear_keys.size() > 1)
    ctx.fail("\"{}\" and \"{}\" both given; a recipe takes one linear scheme", linear_keys[0], linear_keys[1]);
  if (embedding_keys.size() > 1)
    ctx.fail("\"{}\" and \"{}\" both given; a recipe takes one embedding scheme", embedding_keys[0], embedding_keys[1]);
  r.json = j.dump();
  return r;
}

std::string describe(const QuantSpec& s) {
  return fmt::format("{} {}-bit {} {} {}", s.scheme, s.bits,
                     s.group_size == 0 ? std::string("channelwise") : fmt::format("group {}", s.group_size),
                     s.has_zeros ? "asymmetric" : "symmetric",
                     s.dynamic_activations ? "int8-dynamic-activations" : "weight-only");
}

}  // namespace lowbit
