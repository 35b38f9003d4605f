// lowbit quantize: apply a recipe to a model and write one deployable .lbt bundle.
#include <chrono>

#include "cli/commands.h"
#include "cli/common.h"
#include "lowbit/error.h"

namespace lowbit::cli {

namespace {
struct QuantizeArgs {
  ModelOptions model;
  std::string out;
};

void run_quantize(const QuantizeArgs& a) {
  if (a.model.quantize.empty() && a.model.dtype.empty())
    fail("quantize needs --quantize RECIPE (a JSON string or file) or --dtype");
  const auto t0 = std::chrono::steady_clock::now();
  auto model = a.model.load(/*for_running=*/false);
  model->save_bundle(a.out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}: {} weights in {} ({:.3f} bits per weight), recipe {}, {:.1f} s\n", a.out, model->n_params(),
             format_bytes(static_cast<double>(model->weight_bytes())), 8.0 * model->weight_bytes() / model->n_params(),
             model->recipe_json(), s);
}
}  // namespace

void add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model with a recipe into a single .lbt bundle");
  a->model.add(*cmd, 512);
  cmd->add_option("-o,--out", a->out, "Output bundle (.lbt)")->required();
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace lowbit::cli
