// lowbit tokenize: the tokens of a text, as llama.cpp's llama-tokenize prints them.
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/tokenizer.h"

namespace lowbit::cli {

namespace {
struct TokenizeArgs {
  std::string model, prompt, file;
  bool ids = false, bos = false, no_parse_special = false;
};

void run_tokenize(const TokenizeArgs& a) {
  GgufOptions o;
  o.allow_unsupported_types = true;  // only the vocabulary is needed
  GgufFile g(a.model, o);
  auto tok = Tokenizer::from_gguf(g);
  std::string text = a.file.empty() ? a.prompt : read_text_file(a.file);
  std::vector<int32_t> ids = tok->encode(text, /*add_special=*/false, !a.no_parse_special);
  if (a.bos) {
    if (tok->bos_id() < 0) fail("{}: the vocabulary has no BOS token", a.model);
    ids.insert(ids.begin(), tok->bos_id());
  }
  if (a.ids) {
    fmt::print("{}\n", fmt::join(ids, " "));
    return;
  }
  for (int32_t id : ids) fmt::print("{:6d} -> '{}'\n", id, tok->token_to_piece(id, true));
}
}  // namespace

void add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Print the tokens of a text");
  cmd->add_option("-m,--model", a->model, "Model or vocabulary file (GGUF)")->required();
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "Text");
  cmd->add_option("-f,--file", a->file, "Read the text from a file")->excludes(p);
  cmd->add_flag("--ids", a->ids, "Print only the ids, on one line separated by spaces");
  cmd->add_flag("--bos", a->bos, "Prepend the BOS token");
  cmd->add_flag("--no-parse-special", a->no_parse_special, "Treat special-token texts as plain text");
  cmd->callback([a] { run_tokenize(*a); });
}

}  // namespace lowbit::cli
