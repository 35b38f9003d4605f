// Each subcommand registers itself on the app; its callback does the work and throws lowbit::Error on failure.
#pragma once
#include <CLI/CLI.hpp>

namespace lowbit::cli {

void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_bench(CLI::App& app);
void add_inspect(CLI::App& app);
void add_logits(CLI::App& app);
void add_quantize(CLI::App& app);
void add_synth(CLI::App& app);
void add_convert(CLI::App& app);
void add_tune(CLI::App& app);

}  // namespace lowbit::cli
