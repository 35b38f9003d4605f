#include "cli/common.h"

#include <fstream>
#include <sstream>

#include "kernels/tuning.h"
#include "lowbit/error.h"
#include "quant/recipe.h"
#include "lowbit/mapped_file.h"

namespace lowbit::cli {

void ModelOptions::add(CLI::App& cmd, size_t default_ctx) {
  ctx = default_ctx;
  cmd.add_option("-m,--model", model, "Model file (GGUF)")->required();
  cmd.add_option("--dtype", dtype, "Run unquantized weights as f32, f16 or bf16 (default: the file's own types)");
  cmd.add_option("-q,--quantize", quantize, "Quantize in memory with a JSON recipe (string or file), as torchchat");
  cmd.add_option("-t,--threads", threads, "Threads (default: physical cores)")->check(CLI::NonNegativeNumber);
  cmd.add_option("-c,--ctx", ctx, "Context length (tokens)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_option("--tune-profile", tune_profile, "Kernel parameters saved by `lowbit tune` (default: its cache file)");
  cmd.add_option("--kv-type", kv_type, "KV cache element type: f32, f16 or int8")->capture_default_str();
  cmd.add_flag("--row-layout", row_layout,
               "Keep weights in their row layout instead of the row tiles this CPU's kernels read (to compare kernels)");
}

std::optional<Recipe> ModelOptions::recipe() const {
  if (quantize.empty() && dtype.empty()) return std::nullopt;
  if (quantize.empty()) {
    parse_weight_dtype(dtype);  // names --dtype in its error
    return Recipe::parse(fmt::format(R"({{"precision": {{"dtype": "{}"}}}})", dtype));
  }
  Recipe r = Recipe::parse(quantize);
  if (!dtype.empty()) {
    WeightDtype d = parse_weight_dtype(dtype);
    if (r.precision_given && r.precision != d)
      fail("--dtype {} contradicts the recipe's precision {}", dtype, weight_dtype_name(r.precision));
    r.precision = d;
    r.precision_given = true;
  }
  return r;
}

std::shared_ptr<Model> ModelOptions::load(bool for_running) const {
  kernels::init_kernel_tuning(tune_profile);
  LoadOptions o;
  o.row_tiles = for_running && !row_layout;
  o.recipe = recipe();
  o.threads = threads;
  return Model::load(model, o);
}

SessionOptions ModelOptions::session() const {
  SessionOptions s;
  s.n_ctx = ctx;
  s.threads = threads;
  s.kv_type = parse_kv_type(kv_type);
  return s;
}

std::string read_text_file(const std::string& path) {
  MappedFile f(path);  // gives the same clear errors for missing files and directories
  return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return fmt::format("{:.1f} {}", b, units[u]);
}

GgmlType parse_write_type(const std::string& s) {
  if (s == "f32") return GgmlType::F32;
  if (s == "f16") return GgmlType::F16;
  if (s == "bf16") return GgmlType::BF16;
  if (s == "q8_0") return GgmlType::Q8_0;
  if (s == "q4_0") return GgmlType::Q4_0;
  fail("--type '{}' is not one of f32, f16, bf16, q8_0, q4_0", s);
}

}  // namespace lowbit::cli
