// lowbit inspect: a model file's header, metadata and tensors.
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "lowbit/gguf.h"

namespace lowbit::cli {

namespace {
void run_inspect(const std::string& path) {
  GgufOptions o;
  o.allow_unsupported_types = true;
  GgufFile g(path, o);
  fmt::print("{}: GGUF v{}, {} metadata keys, {} tensors, alignment {}, data at offset {}, {}\n", path, g.version(),
             g.metadata().size(), g.tensors().size(), g.alignment(), g.data_offset(),
             format_bytes(static_cast<double>(g.file_size())));
  for (const auto& [key, value] : g.metadata())
    fmt::print("  {:<40} {:<8} {}\n", key, gguf_value_type_name(value.type), gguf_value_to_string(value));
  uint64_t elems = 0, bytes = 0;
  for (const auto& t : g.tensors()) {
    fmt::print("  {:<32} {:<6} [{}] {}\n", t.name, ggml_type_name(t.type), fmt::join(t.ne, ", "),
               format_bytes(static_cast<double>(t.n_bytes)));
    elems += t.n_elements;
    bytes += t.n_bytes;
  }
  fmt::print("{} parameters in {} ({:.3f} bits per weight)\n", elems, format_bytes(static_cast<double>(bytes)),
             elems ? 8.0 * bytes / elems : 0.0);
}
}  // namespace

void add_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "Print a model file's header, metadata and tensors");
  cmd->add_option("file", *path, "Model file (GGUF)")->required();
  cmd->callback([path] { run_inspect(*path); });
}

}  // namespace lowbit::cli
