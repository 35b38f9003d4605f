// End-to-end tests of the `lowbit` executable's handling of bad input: every case must exit nonzero with one
// line `lowbit: error: ...` naming the file or option, and never crash.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

RunResult run_lowbit(const std::string& args) {
  std::string cmd = std::string(LOWBIT_BINARY) + " " + args + " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// The output is exactly one line starting with "lowbit: error:" and containing `needle`.
void expect_one_line_error(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.out;
  EXPECT_EQ(r.out.rfind("lowbit: error:", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
}

class CliTest : public ::testing::Test {
 protected:
  // The child processes get an empty cache folder, so a tuning profile the user saved (or one made for another
  // CPU, as under qemu) cannot add a note line to the output these tests compare.
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lowbit_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const char* old = std::getenv("LOWBIT_CACHE");
    had_cache_ = old != nullptr;
    if (had_cache_) old_cache_ = old;
    ::setenv("LOWBIT_CACHE", dir_.c_str(), 1);
  }
  void TearDown() override {
    if (had_cache_) ::setenv("LOWBIT_CACHE", old_cache_.c_str(), 1);
    else ::unsetenv("LOWBIT_CACHE");
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  }
  fs::path dir_;
  bool had_cache_ = false;
  std::string old_cache_;
};

TEST_F(CliTest, NonexistentModel) {
  expect_one_line_error(run_lowbit("generate -m " + path("nope.gguf") + " -p hi"), "nope.gguf");
}

TEST_F(CliTest, DirectoryAsModel) {
  expect_one_line_error(run_lowbit("generate -m " + dir_.string() + " -p hi"), "directory");
}

TEST_F(CliTest, EmptyModel) {
  expect_one_line_error(run_lowbit("perplexity -m " + write("empty.gguf", "") + " -f " + write("t.txt", "x")),
                        "empty.gguf");
}

TEST_F(CliTest, WrongMagic) {
  expect_one_line_error(run_lowbit("generate -m " + write("bad.gguf", "GGML....garbage.....") + " -p hi"), "magic");
}

TEST_F(CliTest, UnknownOption) {
  RunResult r = run_lowbit("generate --no-such-option");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("lowbit: error:", 0), 0u) << r.out;
}

TEST_F(CliTest, UnknownSubcommand) {
  RunResult r = run_lowbit("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("lowbit: error:", 0), 0u) << r.out;
}

TEST_F(CliTest, BadDtypeNamesTheOption) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  expect_one_line_error(run_lowbit("generate -m " + model + " -p hi --dtype int3"), "--dtype");
}

TEST_F(CliTest, BadTopP) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  expect_one_line_error(run_lowbit("generate -m " + model + " -p hi --top-p 1.5"), "--top-p");
}

TEST_F(CliTest, PromptLongerThanContext) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  std::string prompt(400, 'a');
  for (size_t i = 1; i < prompt.size(); i += 2) prompt[i] = ' ';
  expect_one_line_error(run_lowbit("generate -m " + model + " --ctx 16 -n 4 -p '" + prompt + "'"), "context");
}

TEST_F(CliTest, PerplexityTextTooShort) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  expect_one_line_error(run_lowbit("perplexity -m " + model + " -f " + write("short.txt", "a b c") + " --ctx 64"),
                        "fewer than one window");
}

TEST_F(CliTest, TruncatedModelAtEverySectionBoundary) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  std::ifstream in(model, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  // Cut inside the header, the metadata, the tensor infos, and the tensor data.
  for (size_t cut : {size_t(3), size_t(10), size_t(30), bytes.size() / 8, bytes.size() / 2, bytes.size() - 1}) {
    std::string p = write("cut.gguf", bytes.substr(0, cut));
    expect_one_line_error(run_lowbit("generate -m " + p + " -p hi -n 1"), "cut.gguf");
  }
}

TEST_F(CliTest, GenerateRunsOnTinyModel) {
  std::string model = lowbit::test::write_tiny_llama(path("tiny.gguf")).path;
  RunResult r = run_lowbit("generate -m " + model + " -p 'hello world' -n 8 --temp 0 --ignore-eos");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("tok/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
}

}  // namespace
