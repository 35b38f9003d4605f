// Options shared by the subcommands that load a model.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "lowbit/model.h"
#include "lowbit/session.h"

namespace lowbit::cli {

struct ModelOptions {
  std::string model;
  std::string dtype;     // shorthand for {"precision": {"dtype": ...}}
  std::string quantize;  // a torchchat-style JSON recipe, or a file holding one
  int threads = 0;
  size_t ctx = 0;  // 0 = the command's default
  std::string tune_profile;  // empty: ~/.cache/lowbit/tune.json if present, else the predicted parameters
  bool row_layout = false;   // --row-layout: keep the row layout (no row tiles), to compare kernels
  std::string kv_type = "f32";  // --kv-type

  void add(CLI::App& cmd, size_t default_ctx);
  // for_running: rearrange the weights for this CPU's kernels (LoadOptions::row_tiles); false to write the
  // model out.
  std::shared_ptr<Model> load(bool for_running = true) const;
  std::optional<Recipe> recipe() const;  // from --quantize and --dtype; none: run the file natively
  SessionOptions session() const;
};

std::string read_text_file(const std::string& path);
// --type for the GGUF writers (synth, convert): f32, f16, bf16, q8_0, q4_0.
GgmlType parse_write_type(const std::string& s);
// Human-readable byte count, e.g. "93.8 MiB".
std::string format_bytes(double bytes);

}  // namespace lowbit::cli
