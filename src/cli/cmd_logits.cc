// lowbit logits: run a prompt and write its logits as raw little-endian float32, one row of `vocab` values per
// prompt token (or only the last with --last). The token ids go to stdout. Used by the oracle tests and for
// debugging against other runtimes.
#include <cstdio>
#include <fstream>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "lowbit/error.h"

namespace lowbit::cli {

namespace {
struct LogitsArgs {
  ModelOptions model;
  std::string prompt, out;
  std::vector<int32_t> ids;
  bool last = false, decode = false, bos = false;
};

void run_logits(const LogitsArgs& a) {
  auto model = a.model.load();
  Session session(model, a.model.session());
  std::vector<int32_t> ids =
      a.ids.empty() ? model->tokenizer().encode(a.prompt, /*add_special=*/true, /*parse_special=*/true) : a.ids;
  if (a.bos && (ids.empty() || ids[0] != model->tokenizer().bos_id())) ids.insert(ids.begin(), model->tokenizer().bos_id());
  if (ids.empty()) fail("the prompt is empty");
  const size_t V = model->config().vocab_size;
  std::vector<float> logits;
  if (a.decode) {  // one token at a time (the matrix–vector path)
    for (int32_t t : ids) {
      const float* l = session.decode(t);
      logits.insert(logits.end(), l, l + V);
    }
  } else {
    const float* l = session.prefill(ids, true);
    logits.assign(l, l + ids.size() * V);
  }
  if (a.last) logits.erase(logits.begin(), logits.end() - V);
  const std::string tmp = a.out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) fail("{}: cannot open for writing", tmp);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
    if (!f) fail("{}: write failed", tmp);
  }
  if (std::rename(tmp.c_str(), a.out.c_str()) != 0) fail("{}: cannot rename to {}", tmp, a.out);
  fmt::print("{}\n", fmt::join(ids, " "));
}
}  // namespace

void add_logits(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  auto* cmd = app.add_subcommand("logits", "Write a prompt's logits as raw float32 (token ids to stdout)");
  a->model.add(*cmd, 2048);
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
  cmd->add_option("--ids", a->ids, "Token ids instead of a prompt text")->excludes(p)->delimiter(' ');
  cmd->add_option("-o,--out", a->out, "Output file (raw float32, tokens × vocab)")->required();
  cmd->add_flag("--last", a->last, "Only the last token's logits");
  cmd->add_flag("--decode", a->decode, "Feed the prompt one token at a time instead of one prefill");
  cmd->add_flag("--bos", a->bos, "Prepend BOS even if the vocabulary does not add it");
  cmd->callback([a] { run_logits(*a); });
}

}  // namespace lowbit::cli
