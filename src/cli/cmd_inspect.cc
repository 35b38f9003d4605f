// lowbit inspect: a model file's header, metadata and tensors.
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include <nlohmann/json.hpp>

#include "lowbit/bundle.h"
#include "lowbit/gguf.h"
#include "model/model_loader.h"

namespace lowbit::cli {

namespace {
void inspect_bundle(const std::string& path) {
  BundleFile b(path);
  const nlohmann::json& h = b.header();
  fmt::print("{}: lowbit bundle v{}, {} blobs, {}\n", path, b.version(), b.blobs().size(),
             format_bytes(static_cast<double>(b.file_size())));
  for (const char* key : {"architecture", "name", "config", "recipe", "output_shares_embedding", "n_params"})
    if (h.contains(key)) fmt::print("  {:<24} {}\n", key, h[key].dump());
  uint64_t total = 0;
  if (h.contains("tensors") && h["tensors"].is_array()) {
    for (const auto& t : h["tensors"]) {
      std::string fmt_desc = t.value("format", "?") == "dense"
                                 ? t.value("dtype", "?")
                                 : fmt::format("{}-bit g{} {} {}", t.value("bits", 0), t.value("group_size", 0),
                                               t.value("has_zeros", false) ? "zeros" : "symmetric",
                                               t.value("activations", "?"));
      uint64_t bytes = 0;
      for (const auto& blob : b.blobs())
        if (blob.name.rfind(t.value("name", "") + ".", 0) == 0) bytes += blob.bytes;
      total += bytes;
      fmt::print("  {:<24} [{} x {}] {:<36} {}\n", t.value("name", "?"), t.value("rows", 0), t.value("cols", 0),
                 fmt_desc, format_bytes(static_cast<double>(bytes)));
    }
  }
  fmt::print("weights: {}\n", format_bytes(static_cast<double>(total)));
}

void run_inspect(const std::string& path) {
  if (is_bundle_file(path)) return inspect_bundle(path);
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
  auto* cmd = app.add_subcommand("inspect", "Print a model file's (GGUF or .lbt) header, metadata and tensors");
  cmd->add_option("file", *path, "Model file (GGUF or .lbt)")->required();
  cmd->callback([path] { run_inspect(*path); });
}

}  // namespace lowbit::cli
