#include "cli/common.h"

#include <fstream>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/mapped_file.h"

namespace lowbit::cli {

void ModelOptions::add(CLI::App& cmd, size_t default_ctx) {
  ctx = default_ctx;
  cmd.add_option("-m,--model", model, "Model file (GGUF)")->required();
  cmd.add_option("--dtype", dtype, "Runtime weight type: f32, f16 or bf16")->capture_default_str();
  cmd.add_option("-t,--threads", threads, "Threads (default: physical cores)")->check(CLI::NonNegativeNumber);
  cmd.add_option("-c,--ctx", ctx, "Context length (tokens)")->capture_default_str()->check(CLI::PositiveNumber);
}

std::shared_ptr<Model> ModelOptions::load() const {
  LoadOptions o;
  o.dtype = parse_weight_dtype(dtype);
  o.threads = threads;
  return Model::load(model, o);
}

SessionOptions ModelOptions::session() const {
  SessionOptions s;
  s.n_ctx = ctx;
  s.threads = threads;
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

}  // namespace lowbit::cli
