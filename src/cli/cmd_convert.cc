// lowbit convert: write any model lowbit reads as a GGUF of one weight type.
#include <chrono>

#include "cli/commands.h"
#include "cli/common.h"
#include "convert/convert_gguf.h"
#include "lowbit/error.h"

namespace lowbit::cli {

namespace {
struct ConvertArgs {
  std::string model, to = "gguf", type = "f16", out;
  int threads = 0;
};

void run_convert(const ConvertArgs& a) {
  if (a.to != "gguf") fail("--to '{}' is not supported (supported: gguf)", a.to);
  const GgmlType type = parse_write_type(a.type);
  ThreadPool pool(a.threads > 0 ? a.threads : default_thread_count());
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t bytes = convert_to_gguf(a.model, a.out, type, pool);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}: GGUF, {} weights, {} in {:.1f} s\n", a.out, a.type, format_bytes(static_cast<double>(bytes)), s);
}
}  // namespace

void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "Write a model (GGUF or .lbt) as GGUF of one weight type");
  cmd->add_option("-m,--model", a->model, "Input model (GGUF or .lbt)")->required();
  cmd->add_option("--to", a->to, "Output format (gguf)")->capture_default_str();
  cmd->add_option("--type", a->type, "Weight type: f32, f16, bf16, q8_0, q4_0 (norms stay f32)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("-o,--out", a->out, "Output GGUF")->required();
  cmd->callback([a] { run_convert(*a); });
}

}  // namespace lowbit::cli
