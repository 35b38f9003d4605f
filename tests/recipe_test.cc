// Recipe::parse: every torchchat key gives the QuantSpec docs/recipes.md promises, torchchat's documented
// examples and our shipped profiles parse, recipes load from files, and a matrix of bad recipes each fail with
// one line naming the key and value at fault.
#include "quant/recipe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "test_util.h"

namespace lowbit {

// So gtest prints specs readably when a comparison fails.
void PrintTo(const QuantSpec& s, std::ostream* os) { *os << describe(s); }

namespace {

namespace fs = std::filesystem;
using test::error_message;

QuantSpec spec(int bits, int group, bool zeros, bool dynamic, const std::string& scheme) {
  QuantSpec s;
  s.bits = bits;
  s.group_size = group;
  s.has_zeros = zeros;
  s.dynamic_activations = dynamic;
  s.scheme = scheme;
  return s;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

// ---------------------------------------------------------------------------------------------------------------
// Each key alone

TEST(Recipe, EmptyObjectQuantizesNothing) {
  Recipe r = Recipe::parse("{}");
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.linear);
  EXPECT_FALSE(r.embedding);
  EXPECT_FALSE(r.output);
  EXPECT_FALSE(r.output_unquantized);
  EXPECT_EQ(r.precision, WeightDtype::F32);
  EXPECT_FALSE(r.precision_given);
  EXPECT_EQ(r.accelerator, "cpu");
  EXPECT_EQ(r.json, "{}");
}

TEST(Recipe, LinearInt8) {
  EXPECT_EQ(*Recipe::parse(R"({"linear:int8": {}})").linear, spec(8, 0, true, false, "linear:int8"));
  EXPECT_EQ(*Recipe::parse(R"({"linear:int8": {"groupsize": 0}})").linear, spec(8, 0, true, false, "linear:int8"));
  EXPECT_EQ(*Recipe::parse(R"({"linear:int8": {"groupsize": 64}})").linear, spec(8, 64, true, false, "linear:int8"));
  // torchchat's handler takes a bitwidth; 8 is accepted and means the same.
  EXPECT_EQ(*Recipe::parse(R"({"linear:int8": {"bitwidth": 8, "groupsize": 8}})").linear,
            spec(8, 8, true, false, "linear:int8"));
}

TEST(Recipe, LinearInt4) {
  Recipe r = Recipe::parse(R"({"linear:int4": {"groupsize": 256}})");
  EXPECT_EQ(*r.linear, spec(4, 256, true, false, "linear:int4"));
  EXPECT_FALSE(r.embedding);
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(*Recipe::parse(R"({"linear:int4": {"groupsize": 32}})").linear, spec(4, 32, true, false, "linear:int4"));
  EXPECT_EQ(*Recipe::parse(R"({"linear:int4": {"groupsize": 0}})").linear, spec(4, 0, true, false, "linear:int4"));
  EXPECT_EQ(*Recipe::parse(R"({"linear:int4": {"groupsize": 96, "bitwidth": 4}})").linear,
            spec(4, 96, true, false, "linear:int4"));
  // Any positive group parses (whether it divides a row is checked per tensor), up to 65536.
  EXPECT_EQ(Recipe::parse(R"({"linear:int4": {"groupsize": 48}})").linear->group_size, 48);
  EXPECT_EQ(Recipe::parse(R"({"linear:int4": {"groupsize": 65536}})").linear->group_size, 65536);
}

TEST(Recipe, LinearA8W4dq) {
  // torchao's Int8DynActInt4WeightQuantizer defaults groupsize to 256.
  EXPECT_EQ(*Recipe::parse(R"({"linear:a8w4dq": {}})").linear, spec(4, 256, false, true, "linear:a8w4dq"));
  EXPECT_EQ(*Recipe::parse(R"({"linear:a8w4dq": {"groupsize": 32}})").linear,
            spec(4, 32, false, true, "linear:a8w4dq"));
}

TEST(Recipe, LinearA8WXdq) {
  for (int bits = 1; bits <= 8; ++bits) {
    const std::string b = std::to_string(bits);
    EXPECT_EQ(*Recipe::parse(R"({"linear:a8wxdq": {"bitwidth": )" + b + R"(, "groupsize": 32}})").linear,
              spec(bits, 32, false, true, "linear:a8wxdq"))
        << bits;
    EXPECT_EQ(
        *Recipe::parse(R"({"linear:a8wxdq": {"bitwidth": )" + b + R"(, "groupsize": 128, "has_weight_zeros": true}})")
             .linear,
        spec(bits, 128, true, true, "linear:a8wxdq"))
        << bits;
  }
  EXPECT_EQ(*Recipe::parse(R"({"linear:a8wxdq": {"bitwidth": 3, "groupsize": 64, "has_weight_zeros": false}})").linear,
            spec(3, 64, false, true, "linear:a8wxdq"));
}

TEST(Recipe, Embedding) {
  // torchchat's EmbeddingOnlyQuantHandler defaults: 8 bits, channelwise.
  Recipe r = Recipe::parse(R"({"embedding": {}})");
  EXPECT_EQ(*r.embedding, spec(8, 0, false, false, "embedding"));
  EXPECT_FALSE(r.linear);
  EXPECT_FALSE(r.empty());
  for (int bits : {2, 4, 8})
    EXPECT_EQ(
        *Recipe::parse(R"({"embedding": {"bitwidth": )" + std::to_string(bits) + R"(, "groupsize": 32}})").embedding,
        spec(bits, 32, false, false, "embedding"));
  EXPECT_EQ(*Recipe::parse(R"({"embedding": {"bitwidth": 4}})").embedding, spec(4, 0, false, false, "embedding"));
}

TEST(Recipe, EmbeddingWx) {
  for (int bits = 1; bits <= 8; ++bits)
    EXPECT_EQ(
        *Recipe::parse(R"({"embedding:wx": {"bitwidth": )" + std::to_string(bits) + R"(, "groupsize": 32}})").embedding,
        spec(bits, 32, true, false, "embedding:wx"));
}

TEST(Recipe, Precision) {
  const std::pair<const char*, WeightDtype> cases[] = {
      {"fp32", WeightDtype::F32}, {"float32", WeightDtype::F32}, {"float", WeightDtype::F32},
      {"f32", WeightDtype::F32},  {"bf16", WeightDtype::BF16},   {"bfloat16", WeightDtype::BF16},
      {"fp16", WeightDtype::F16}, {"float16", WeightDtype::F16}, {"half", WeightDtype::F16},
      {"f16", WeightDtype::F16},
  };
  for (const auto& [name, dtype] : cases) {
    Recipe r = Recipe::parse(std::string(R"({"precision": {"dtype": ")") + name + R"("}})");
    EXPECT_EQ(r.precision, dtype) << name;
    EXPECT_TRUE(r.precision_given) << name;
    EXPECT_TRUE(r.empty()) << name;  // precision alone quantizes nothing
  }
}

TEST(Recipe, ExecutorCpu) {
  Recipe r = Recipe::parse(R"({"executor": {"accelerator": "cpu"}})");
  EXPECT_EQ(r.accelerator, "cpu");
  EXPECT_TRUE(r.empty());
}

// ---------------------------------------------------------------------------------------------------------------
// "output"

TEST(Recipe, OutputNoneKeepsTheProjectionUnquantized) {
  Recipe r = Recipe::parse(R"({"embedding": {"bitwidth": 4, "groupsize": 32}, "output": "none"})");
  EXPECT_TRUE(r.output_unquantized);
  EXPECT_FALSE(r.output);
  EXPECT_FALSE(r.output_spec(true));
  EXPECT_FALSE(r.output_spec(false));
}

TEST(Recipe, OutputSchemeOverrides) {
  Recipe r = Recipe::parse(R"({"output": {"scheme": "linear:int8", "groupsize": 0}})");
  EXPECT_EQ(*r.output, spec(8, 0, true, false, "linear:int8"));
  EXPECT_FALSE(r.empty());
  // The short forms drop "linear:".
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "int8"}})").output, spec(8, 0, true, false, "linear:int8"));
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "int4", "groupsize": 64}})").output,
            spec(4, 64, true, false, "linear:int4"));
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "a8w4dq"}})").output, spec(4, 256, false, true, "linear:a8w4dq"));
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "a8wxdq", "bitwidth": 6, "groupsize": 32,
                                          "has_weight_zeros": true}})")
                 .output,
            spec(6, 32, true, true, "linear:a8wxdq"));
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "embedding", "bitwidth": 4, "groupsize": 32}})").output,
            spec(4, 32, false, false, "embedding"));
  EXPECT_EQ(*Recipe::parse(R"({"output": {"scheme": "embedding:wx", "bitwidth": 5, "groupsize": 64}})").output,
            spec(5, 64, true, false, "embedding:wx"));
}

TEST(Recipe, OutputFollowsEmbeddingWhenTiedAndLinearWhenUntied) {
  Recipe r = Recipe::parse(R"({"embedding": {"bitwidth": 4, "groupsize": 32}, "linear:int4": {"groupsize": 64}})");
  EXPECT_EQ(*r.output_spec(true), *r.embedding);
  EXPECT_EQ(*r.output_spec(false), *r.linear);

  Recipe only_linear = Recipe::parse(R"({"linear:int4": {"groupsize": 64}})");
  EXPECT_FALSE(only_linear.output_spec(true));  // tied: the embedding table stays unquantized, and so the output
  EXPECT_EQ(*only_linear.output_spec(false), *only_linear.linear);

  Recipe over = Recipe::parse(
      R"({"embedding": {"bitwidth": 4, "groupsize": 32}, "linear:int4": {"groupsize": 64},
          "output": {"scheme": "linear:int8"}})");
  EXPECT_EQ(*over.output_spec(true), spec(8, 0, true, false, "linear:int8"));
  EXPECT_EQ(*over.output_spec(false), spec(8, 0, true, false, "linear:int8"));
}

// ---------------------------------------------------------------------------------------------------------------
// torchchat's documented examples (docs/quantization.md and torchchat/quant_config/*.json)

TEST(Recipe, TorchchatDocExamples) {
  {
    Recipe r = Recipe::parse(R"({"linear:a8w4dq": {"groupsize" : 256}})");
    EXPECT_EQ(*r.linear, spec(4, 256, false, true, "linear:a8w4dq"));
    EXPECT_FALSE(r.embedding);
  }
  {
    Recipe r = Recipe::parse(R"({"embedding": {"bitwidth": 4, "groupsize":32}, "linear:a8w4dq": {"groupsize" : 256}})");
    EXPECT_EQ(*r.embedding, spec(4, 32, false, false, "embedding"));
    EXPECT_EQ(*r.linear, spec(4, 256, false, true, "linear:a8w4dq"));
  }
  {
    // The doc's example names "cuda"; lowbit runs on the CPU only, so the same recipe with "cpu".
    Recipe r = Recipe::parse(
        R"({"executor": {"accelerator": "cpu"}, "precision": {"dtype": "bf16"}, "linear:int4": {"groupsize" : 256}})");
    EXPECT_EQ(r.accelerator, "cpu");
    EXPECT_EQ(r.precision, WeightDtype::BF16);
    EXPECT_TRUE(r.precision_given);
    EXPECT_EQ(*r.linear, spec(4, 256, true, false, "linear:int4"));
  }
  {
    Recipe r = Recipe::parse(R"({"embedding" : {"bitwidth": 8, "groupsize": 0}})");
    EXPECT_EQ(*r.embedding, spec(8, 0, false, false, "embedding"));
    EXPECT_FALSE(r.linear);
  }
  {
    Recipe r = Recipe::parse(R"({"embedding": {"bitwidth": 4, "groupsize":32}, "linear:int4": {"groupsize" : 256}})");
    EXPECT_EQ(*r.embedding, spec(4, 32, false, false, "embedding"));
    EXPECT_EQ(*r.linear, spec(4, 256, true, false, "linear:int4"));
  }
  {
    Recipe r = Recipe::parse(
        R"({"embedding:wx": {"bitwidth": 2, "groupsize": 32}, "linear:a8wxdq": {"bitwidth": 3, "groupsize": 128, "has_weight_zeros": false}})");
    EXPECT_EQ(*r.embedding, spec(2, 32, true, false, "embedding:wx"));
    EXPECT_EQ(*r.linear, spec(3, 128, false, true, "linear:a8wxdq"));
  }
  {
    // quantize.py's docstring example (with JSON's spelling of the dtype).
    Recipe r = Recipe::parse(R"({"embedding": {"bitwidth": 8, "groupsize": 8}, "linear:int8": {"bitwidth": 8,
                                 "groupsize": 8}, "precision": {"dtype": "float16"}})");
    EXPECT_EQ(*r.embedding, spec(8, 8, false, false, "embedding"));
    EXPECT_EQ(*r.linear, spec(8, 8, true, false, "linear:int8"));
    EXPECT_EQ(r.precision, WeightDtype::F16);
  }
  {
    // quant_config/mobile.json and mobile-32.json, formatted as there.
    Recipe m = Recipe::parse(
        "{\n    \"embedding\": {\"bitwidth\": 4, \"groupsize\" : 32},\n"
        "    \"linear:a8w4dq\": {\"groupsize\" : 256}\n}\n");
    EXPECT_EQ(*m.linear, spec(4, 256, false, true, "linear:a8w4dq"));
    Recipe m32 = Recipe::parse(
        "{\n    \"embedding\": {\"bitwidth\": 4, \"groupsize\" : 32},\n"
        "    \"linear:a8w4dq\": {\"groupsize\" : 32}\n}\n");
    EXPECT_EQ(*m32.linear, spec(4, 32, false, true, "linear:a8w4dq"));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Canonical JSON, files, profiles

TEST(Recipe, JsonIsCanonicalAndRoundTrips) {
  Recipe r = Recipe::parse(
      "  \n{ \"linear:int4\" : { \"groupsize\" : 256 },\n  \"embedding\": {\"groupsize\":32, \"bitwidth\": 4} }\n");
  EXPECT_EQ(r.json, R"({"embedding":{"bitwidth":4,"groupsize":32},"linear:int4":{"groupsize":256}})");
  Recipe again = Recipe::parse(r.json);
  EXPECT_EQ(again.json, r.json);
  EXPECT_EQ(*again.linear, *r.linear);
  EXPECT_EQ(*again.embedding, *r.embedding);
  // Defaults are not written into it: it is the recipe as given.
  EXPECT_EQ(Recipe::parse(R"({"linear:a8w4dq":{}})").json, R"({"linear:a8w4dq":{}})");
  EXPECT_EQ(Recipe::parse(R"({"output":"none"})").json, R"({"output":"none"})");
}

TEST(Recipe, ReadsAFile) {
  test::TempDir dir;
  const std::string path = dir.file("q.json");
  write_text(path,
             "{\n  \"embedding:wx\": {\"bitwidth\": 2, \"groupsize\": 32},\n"
             "  \"linear:a8wxdq\": {\"bitwidth\": 3, \"groupsize\": 128, \"has_weight_zeros\": false}\n}\n");
  Recipe r = Recipe::parse(path);
  EXPECT_EQ(*r.embedding, spec(2, 32, true, false, "embedding:wx"));
  EXPECT_EQ(*r.linear, spec(3, 128, false, true, "linear:a8wxdq"));
  EXPECT_EQ(r.json, R"({"embedding:wx":{"bitwidth":2,"groupsize":32},)"
                    R"("linear:a8wxdq":{"bitwidth":3,"groupsize":128,"has_weight_zeros":false}})");
  // Surrounding whitespace around the path is ignored, as around inline JSON; a UTF-8 BOM in the file too.
  EXPECT_EQ(*Recipe::parse("  " + path + "\n").linear, *r.linear);
  write_text(path, "\xEF\xBB\xBF{\"linear:int4\": {\"groupsize\": 32}}");
  EXPECT_EQ(*Recipe::parse(path).linear, spec(4, 32, true, false, "linear:int4"));
}

TEST(Recipe, FileErrorsNameTheFile) {
  test::TempDir dir;
  const std::string path = dir.file("bad.json");

  write_text(path, "{\n  \"linear:int4\": {\"groupsize\": 32},\n  \"embedding\": {\"bitwidth\": 4,, }\n}\n");
  auto msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind(path + ": invalid JSON: parse error at line 3, column", 0), 0u) << *msg;
  EXPECT_EQ(msg->find('\n'), std::string::npos) << *msg;

  write_text(path, R"({"linear:int4": {"groupsize": "32"}})");
  msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, path + R"(: linear:int4.groupsize: expected an integer, got "32" (string))");

  write_text(path, "[1, 2]");
  msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, path + ": top level must be a JSON object, got array [1,2]");

  write_text(path, "null");
  msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, path + ": top level must be a JSON object, got null null");

  write_text(path, "");
  msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind(path + ": invalid JSON: parse error at line 1, column 1:", 0), 0u) << *msg;

  write_text(path, "{\"linear:int4\": {\"groupsize\": 32}}" + std::string(2 << 20, ' '));
  msg = error_message([&] { Recipe::parse(path); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find(path + ": recipe file is 2097186 bytes"), std::string::npos) << *msg;

  msg = error_message([&] { Recipe::parse(dir.path()); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, dir.path() + ": is a directory, not a recipe file");

  msg = error_message([&] { Recipe::parse(dir.file("missing.json")); });
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind(dir.file("missing.json") + ": cannot open recipe file: No such file or directory", 0), 0u)
      << *msg;
}

fs::path recipes_dir() { return fs::path(__FILE__).parent_path().parent_path() / "recipes"; }

TEST(Recipe, ShippedProfilesParse) {
  ASSERT_TRUE(fs::is_directory(recipes_dir())) << recipes_dir();
  {
    Recipe r = Recipe::parse((recipes_dir() / "desktop.json").string());
    EXPECT_EQ(*r.linear, spec(4, 32, true, false, "linear:int4"));
    EXPECT_EQ(*r.embedding, spec(8, 32, false, false, "embedding"));
    EXPECT_FALSE(r.output);
    EXPECT_EQ(r.precision, WeightDtype::BF16);
    EXPECT_EQ(r.accelerator, "cpu");
  }
  {
    Recipe r = Recipe::parse((recipes_dir() / "mobile.json").string());
    EXPECT_EQ(*r.linear, spec(4, 32, false, true, "linear:a8w4dq"));
    EXPECT_EQ(*r.embedding, spec(4, 32, false, false, "embedding"));
    EXPECT_FALSE(r.precision_given);
  }
  {
    Recipe r = Recipe::parse((recipes_dir() / "pi5.json").string());
    EXPECT_EQ(*r.linear, spec(4, 32, true, true, "linear:a8wxdq"));
    EXPECT_EQ(*r.embedding, spec(4, 32, true, false, "embedding:wx"));
  }
  // Every profile's group size divides SmolLM2-135M's row lengths (576 and 1536), so each applies to it.
  for (const char* name : {"desktop.json", "mobile.json", "pi5.json"}) {
    Recipe r = Recipe::parse((recipes_dir() / name).string());
    for (const auto& s : {r.linear, r.embedding}) {
      ASSERT_TRUE(s) << name;
      EXPECT_EQ(576 % s->group_size, 0) << name;
      EXPECT_EQ(1536 % s->group_size, 0) << name;
    }
  }
}

TEST(Recipe, Describe) {
  EXPECT_EQ(describe(spec(4, 32, true, false, "linear:int4")), "linear:int4 4-bit group 32 asymmetric weight-only");
  EXPECT_EQ(describe(spec(8, 0, false, true, "linear:a8wxdq")),
            "linear:a8wxdq 8-bit channelwise symmetric int8-dynamic-activations");
}

// ---------------------------------------------------------------------------------------------------------------
// Bad recipes: each must fail with one line containing `expect`.

struct BadCase {
  std::string recipe;
  std::string expect;
};

TEST(Recipe, InvalidRecipesFailNamingTheFault) {
  const std::string deep = std::string(20, '[') + std::string(20, ']');
  const std::vector<BadCase> cases = {
      // bitwidth
      {R"({"linear:a8wxdq": {"bitwidth": 9, "groupsize": 32}})",
       "recipe: linear:a8wxdq.bitwidth: must be 1, 2, 3, 4, 5, 6, 7 or 8 (got 9)"},
      {R"({"linear:a8wxdq": {"bitwidth": 0, "groupsize": 32}})", "linear:a8wxdq.bitwidth: must be 1, 2, 3"},
      {R"({"linear:a8wxdq": {"bitwidth": -3, "groupsize": 32}})", "(got -3)"},
      {R"({"linear:a8wxdq": {"bitwidth": "4", "groupsize": 32}})",
       R"(linear:a8wxdq.bitwidth: expected an integer, got "4" (string))"},
      {R"({"linear:a8wxdq": {"bitwidth": null, "groupsize": 32}})",
       "linear:a8wxdq.bitwidth: expected an integer, got null (null)"},
      {R"({"linear:a8wxdq": {"groupsize": 32}})", "linear:a8wxdq.bitwidth: missing"},
      {R"({"embedding": {"bitwidth": 3, "groupsize": 32}})", "recipe: embedding.bitwidth: must be 2, 4 or 8 (got 3)"},
      {R"({"embedding:wx": {"bitwidth": 9, "groupsize": 32}})", "embedding:wx.bitwidth: must be 1, 2, 3"},
      {R"({"embedding:wx": {"groupsize": 32}})", "embedding:wx.bitwidth: missing"},
      {R"({"linear:int8": {"bitwidth": 4}})",
       "linear:int8.bitwidth: must be 8 for linear:int8 (got 4); other widths: linear:int4"},
      {R"({"linear:int4": {"bitwidth": 8, "groupsize": 32}})",
       "linear:int4.bitwidth: must be 4 for linear:int4 (got 8)"},
      {R"({"linear:a8w4dq": {"bitwidth": 8}})", "other widths: linear:a8wxdq"},
      // groupsize
      {R"({"linear:int4": {"groupsize": -1}})",
       "recipe: linear:int4.groupsize: must be >= 0 (0 = channelwise), got -1"},
      {R"({"linear:int4": {"groupsize": "32"}})", R"(linear:int4.groupsize: expected an integer, got "32" (string))"},
      {R"({"linear:int4": {"groupsize": 32.5}})",
       "linear:int4.groupsize: expected an integer, got 32.5 (floating-point)"},
      {R"({"linear:int4": {"groupsize": 32.0}})", "linear:int4.groupsize: expected an integer, got 32.0"},
      {R"({"linear:int4": {"groupsize": 1e30}})", "linear:int4.groupsize: expected an integer"},
      {R"({"linear:int4": {"groupsize": true}})", "linear:int4.groupsize: expected an integer, got true (boolean)"},
      {R"({"linear:int4": {"groupsize": [32]}})", "linear:int4.groupsize: expected an integer, got [32] (array)"},
      {R"({"linear:int4": {"groupsize": 65537}})", "linear:int4.groupsize: must be at most 65536, got 65537"},
      {R"({"linear:int4": {"groupsize": 18446744073709551615}})", "must be at most 65536, got 18446744073709551615"},
      {R"({"linear:int4": {}})", "recipe: linear:int4.groupsize: missing (required"},
      {R"({"linear:a8wxdq": {"bitwidth": 4}})", "linear:a8wxdq.groupsize: missing"},
      {R"({"embedding:wx": {"bitwidth": 4}})", "embedding:wx.groupsize: missing"},
      {R"({"embedding": {"bitwidth": 4, "groupsize": -32}})", "embedding.groupsize: must be >= 0"},
      // has_weight_zeros
      {R"({"linear:a8wxdq": {"bitwidth": 4, "groupsize": 32, "has_weight_zeros": "yes"}})",
       R"(linear:a8wxdq.has_weight_zeros: expected true or false, got "yes")"},
      {R"({"linear:a8wxdq": {"bitwidth": 4, "groupsize": 32, "has_weight_zeros": 1}})",
       "linear:a8wxdq.has_weight_zeros: expected true or false, got 1"},
      {R"({"linear:int4": {"groupsize": 32, "has_weight_zeros": true}})",
       "linear:int4.has_weight_zeros: unknown key; linear:int4 takes bitwidth, groupsize"},
      // unknown keys
      {R"({"linear:int3": {"groupsize": 32}})", R"(recipe: unknown key "linear:int3"; valid keys: embedding, )"},
      {R"({"Linear:int4": {"groupsize": 32}})", R"(unknown key "Linear:int4")"},
      {R"({"linear:afpwx": {"bitwidth": 4, "groupsize": 256}})", "linear:afpwx runs only on Apple MPS"},
      {R"({"linear:int4": {"groupsize": 32, "inner_k_tiles": 8}})",
       "recipe: linear:int4.inner_k_tiles: unknown key; linear:int4 takes bitwidth, groupsize"},
      {R"({"embedding": {"bitwidth": 4, "group_size": 32}})", "embedding.group_size: unknown key"},
      // wrong shape of a scheme's value
      {R"({"linear:int4": 32})", R"(recipe: linear:int4: expected an object such as {"groupsize": 32}, got 32)"},
      {R"({"linear:int4": [{"groupsize": 32}]})", "linear:int4: expected an object"},
      {R"({"embedding": null})",
       "embedding: expected an object such as {\"bitwidth\": 4, \"groupsize\": 32}, got null"},
      // executor
      {R"({"executor": {"accelerator": "cuda"}})",
       R"(recipe: executor.accelerator: "cuda" is not supported; lowbit runs only on the CPU ("cpu"))"},
      {R"({"executor": {"accelerator": "mps"}})", R"(executor.accelerator: "mps" is not supported)"},
      {R"({"executor": {"accelerator": "fast"}})", R"(executor.accelerator: "fast" is not supported)"},
      {R"({"executor": {"accelerator": 1}})", "executor.accelerator: expected a string, got 1"},
      {R"({"executor": {}})", "executor.accelerator: missing"},
      {R"({"executor": {"accelerator": "cpu", "threads": 4}})", "executor.threads: unknown key"},
      {R"({"executor": {"accelerator": "cuda"}, "precision": {"dtype": "bf16"}, "linear:int4": {"groupsize" : 256}})",
       R"(executor.accelerator: "cuda" is not supported)"},
      // precision
      {R"({"precision": {"dtype": "fp8"}})",
       R"(recipe: precision.dtype: "fp8" is not one of fp32, float32, float, bf16, bfloat16, fp16, float16, half)"},
      {R"({"precision": {"dtype": "fast16"}})", R"(precision.dtype: "fast16" picks a dtype per machine)"},
      {R"({"precision": {"dtype": 16}})", "precision.dtype: expected a string, got 16"},
      {R"({"precision": {}})", "precision.dtype: missing"},
      {R"({"precision": "bf16"})", R"(precision: expected an object such as {"dtype": "bf16"}, got "bf16")"},
      // output
      {R"({"output": "int8"})", R"(recipe: output: expected "none" or an object such as {"scheme": "linear:int8")"},
      {R"({"output": {"groupsize": 32}})", "output.scheme: missing (one of linear:int8, linear:int4"},
      {R"({"output": {"scheme": "int3"}})", R"(output.scheme: "int3" is not one of linear:int8)"},
      {R"({"output": {"scheme": 8}})", "output.scheme: expected a string, got 8"},
      {R"({"output": {"scheme": "int4"}})", "recipe: output.groupsize: missing (required"},
      {R"({"output": {"scheme": "linear:int8", "groupsize": 32, "foo": 1}})",
       "output.foo: unknown key; linear:int8 takes bitwidth, groupsize"},
      {R"({"output": {"scheme": "a8wxdq", "bitwidth": 12, "groupsize": 32}})", "output.bitwidth: must be 1, 2"},
      // conflicts
      {R"({"linear:int4": {"groupsize": 32}, "linear:a8w4dq": {"groupsize": 32}})",
       R"(recipe: "linear:a8w4dq" and "linear:int4" both given; a recipe takes one linear scheme)"},
      {R"({"linear:int8": {}, "linear:a8wxdq": {"bitwidth": 4, "groupsize": 32}, "linear:int4": {"groupsize": 32}})",
       "a recipe takes one linear scheme"},
      {R"({"embedding": {"bitwidth": 4}, "embedding:wx": {"bitwidth": 4, "groupsize": 32}})",
       R"(recipe: "embedding" and "embedding:wx" both given; a recipe takes one embedding scheme)"},
      {R"({"linear:int4": {"groupsize": 32}, "linear:int4": {"groupsize": 64}})", "recipe: linear:int4: duplicate key"},
      {R"({"linear:int4": {"groupsize": 32, "groupsize": 64}})", "recipe: linear:int4.groupsize: duplicate key"},
      // not an object / not JSON
      {R"([{"linear:int4": {"groupsize": 32}}])", "recipe: top level must be a JSON object, got array"},
      {"", "recipe: empty; expected a JSON object"},
      {"  \n\t ", "recipe: empty"},
      {R"({"linear:int4": {"groupsize": 32})", "recipe: invalid JSON: parse error at line 1, column 34"},
      {R"({"linear:int4": {"groupsize": 32},})", "recipe: invalid JSON: parse error at line 1, column"},
      {"{'linear:int4': {'groupsize': 32}}", "recipe: invalid JSON: parse error"},
      {R"({"linear:int4": {"groupsize": 32}} /* c */)", "recipe: invalid JSON"},
      {R"({"linear:int4": {"groupsize": 32}} {})", "recipe: invalid JSON"},
      {"{\"\xff\": 1}",
       "recipe: invalid JSON: parse error at line 1, column 3: syntax error while parsing object key - "
       "invalid string: ill-formed UTF-8 byte; last read: '\"\\xff'"},
      {"{\"linear:int4\": {\"groupsize\": 32, \"a\\nb\": 1}}", R"(linear:int4."a\nb": unknown key)"},
      {"{\"linear:int4\": {\"groupsize\": 32, \"" + std::string(100, 'k') + "\": 1}}",
       "linear:int4." + std::string(45, 'k') + "...: unknown key"},
      {"{\"" + std::string(100, 'k') + "\": 1}", "recipe: unknown key \"" + std::string(44, 'k') + "...; valid keys"},
      {"{\n\"linear:int4\":\n{\"groupsize\": }}", "recipe: invalid JSON: parse error at line 3, column"},
      {deep, "recipe: nested deeper than 16 levels"},
      {R"({"a": )" + deep + "}", "nested deeper than 16 levels"},
      // paths
      {"/nonexistent/recipe.json", "/nonexistent/recipe.json: cannot open recipe file: No such file or directory"},
      {"linear:int4", "linear:int4: cannot open recipe file"},
      {"/", "/: is a directory, not a recipe file"},
      {"/dev/null", "/dev/null: not a regular file"},
  };
  ASSERT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    auto msg = error_message([&] { Recipe::parse(c.recipe); });
    if (!msg) {
      ADD_FAILURE() << "accepted: " << c.recipe;
      continue;
    }
    EXPECT_NE(msg->find(c.expect), std::string::npos) << "recipe: " << c.recipe << "\nmessage: " << *msg;
    EXPECT_EQ(msg->find('\n'), std::string::npos) << "not one line: " << *msg;
    const bool named = msg->rfind("recipe: ", 0) == 0 || msg->rfind(std::string(c.recipe.c_str()) + ":", 0) == 0;
    EXPECT_TRUE(named) << *msg;
  }
}

}  // namespace
}  // namespace lowbit
