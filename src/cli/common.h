// Options shared by the subcommands that load a model.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "lowbit/model.h"
#include "lowbit/session.h"

namespace lowbit::cli {

struct ModelOptions {
  std::string model;
  std::string dtype = "f32";
  int threads = 0;
  size_t ctx = 0;  // 0 = the command's default

  void add(CLI::App& cmd, size_t default_ctx);
  std::shared_ptr<Model> load() const;
  SessionOptions session() const;
};

std::string read_text_file(const std::string& path);
// Human-readable byte count, e.g. "93.8 MiB".
std::string format_bytes(double bytes);

}  // namespace lowbit::cli
