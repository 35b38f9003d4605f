#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "lowbit/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lowbit: small, fast LLMs on CPUs"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for all subcommands");
  lowbit::cli::add_generate(app);
  lowbit::cli::add_perplexity(app);
  lowbit::cli::add_tokenize(app);
  lowbit::cli::add_bench(app);
  lowbit::cli::add_inspect(app);
  lowbit::cli::add_logits(app);
  lowbit::cli::add_quantize(app);
  lowbit::cli::add_synth(app);
  lowbit::cli::add_convert(app);
  lowbit::cli::add_tune(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "lowbit: error: {} (see --help)\n", e.what());
    return 2;
  } catch (const lowbit::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "lowbit: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "lowbit: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lowbit: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
