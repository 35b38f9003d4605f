// Kernel tuning profiles: the prediction, save → load round trip, profiles of another CPU ignored, bad files.
#include "kernels/tuning.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "lowbit/error.h"
#include "test_util.h"

namespace lowbit::kernels {
namespace {

struct RestoreTuning {
  KernelTuning saved = kernel_tuning();
  ~RestoreTuning() { set_kernel_tuning(saved); }
};

TEST(Tuning, PredictionFollowsTheL2Size) {
  CpuInfo cpu;
  cpu.l2 = 1 << 20;
  const KernelTuning a = predict_tuning(cpu);
  EXPECT_EQ(a.prefill_token_block, 192u);  // 3/4 MiB / 4096, a multiple of 32
  cpu.l2 = 256 << 10;
  EXPECT_EQ(predict_tuning(cpu).prefill_token_block, 128u);  // never below 128
  cpu.l2 = 4 << 20;
  EXPECT_EQ(predict_tuning(cpu).prefill_token_block, 768u);
  EXPECT_GE(a.a8_outer_min_tokens, 2u);
  EXPECT_GE(a.dot_grain, 1u);
}

TEST(Tuning, SavedProfileIsLoadedOnTheSameCpu) {
  RestoreTuning restore;
  test::TempDir dir;
  const std::string path = dir.path() + "/tune.json";
  save_tune_profile(path, read_cpu_info(), {9, 64, 32}, R"({"note": 1})");
  set_kernel_tuning({6, 0, 16});
  const std::string how = init_kernel_tuning(path);
  EXPECT_NE(how.find(path), std::string::npos) << how;
  EXPECT_EQ(kernel_tuning().a8_outer_min_tokens, 9u);
  EXPECT_EQ(kernel_tuning().prefill_token_block, 64u);
  EXPECT_EQ(kernel_tuning().dot_grain, 32u);
}

TEST(Tuning, ProfileOfAnotherCpuFallsBackToThePrediction) {
  RestoreTuning restore;
  test::TempDir dir;
  const std::string path = dir.path() + "/tune.json";
  CpuInfo other = read_cpu_info();
  other.model_name = "Some Other CPU";
  save_tune_profile(path, other, {9, 64, 32}, "{}");
  ::testing::internal::CaptureStderr();
  init_kernel_tuning(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Some Other CPU"), std::string::npos) << err;
  const KernelTuning want = predict_tuning(read_cpu_info());
  EXPECT_EQ(kernel_tuning().prefill_token_block, want.prefill_token_block);
}

TEST(Tuning, ProfileOfOlderKernelsFallsBackToThePrediction) {
  RestoreTuning restore;
  test::TempDir dir;
  const std::string path = dir.path() + "/tune.json";
  save_tune_profile(path, read_cpu_info(), {9, 64, 32, 65536}, "{}");
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in);
  in.close();
  j.erase("version");  // as saved before versions existed
  std::ofstream(path) << j.dump();
  ::testing::internal::CaptureStderr();
  const std::string how = init_kernel_tuning(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("older kernel layout"), std::string::npos) << err;
  EXPECT_NE(how.find("predicted"), std::string::npos) << how;
  EXPECT_EQ(kernel_tuning().decode_prefetch_bytes, predict_tuning(read_cpu_info()).decode_prefetch_bytes);
  EXPECT_EQ(kernel_tuning().prefill_token_block, predict_tuning(read_cpu_info()).prefill_token_block);
}

TEST(Tuning, BadProfilesAreClearErrors) {
  RestoreTuning restore;
  test::TempDir dir;
  auto msg = test::error_message([&] { init_kernel_tuning(dir.path() + "/missing.json"); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("missing.json"), std::string::npos) << *msg;
  const std::string bad = dir.path() + "/bad.json";
  std::ofstream(bad) << "{not json";
  msg = test::error_message([&] { init_kernel_tuning(bad); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("bad.json"), std::string::npos) << *msg;
  std::ofstream(bad) << R"({"cpu": "x", "params": {"a8_outer_min_tokens": -1}})";
  msg = test::error_message([&] { init_kernel_tuning(bad); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("a8_outer_min_tokens"), std::string::npos) << *msg;
  msg = test::error_message([] { set_kernel_tuning({1, 0, 16}); });
  ASSERT_TRUE(msg);
}

}  // namespace
}  // namespace lowbit::kernels
