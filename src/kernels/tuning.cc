#include "kernels/tuning.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/matmul_q/matmul_q.h"
#include "lowbit/error.h"
#include "lowbit/thread_pool.h"

namespace lowbit::kernels {

namespace {

KernelTuning& current() {
  static KernelTuning t;
  return t;
}

// "48K", "1024K", "32M" (sysfs cache sizes) → bytes; 0 when unreadable.
size_t read_cache_size(const std::string& file) {
  std::ifstream f(file);
  std::string s;
  if (!(f >> s) || s.empty()) return 0;
  size_t n = std::strtoull(s.c_str(), nullptr, 10);
  if (s.back() == 'K') n <<= 10;
  if (s.back() == 'M') n <<= 20;
  return n;
}

std::string read_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (line.rfind("model name", 0) == 0 && colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      return v;
    }
  }
  return "unknown";
}

}  // namespace

CpuInfo read_cpu_info() {
  CpuInfo c;
  c.model_name = read_model_name();
  c.isa = matmul_q_target_name();
  c.cores = default_thread_count();
  const std::string base = "/sys/devices/system/cpu/cpu0/cache/index";
  for (int i = 0; i < 8; ++i) {
    std::ifstream lvl(base + std::to_string(i) + "/level"), type(base + std::to_string(i) + "/type");
    int level = 0;
    std::string t;
    if (!(lvl >> level) || !(type >> t)) continue;
    const size_t size = read_cache_size(base + std::to_string(i) + "/size");
    if (size == 0) continue;
    if (level == 1 && t == "Data") c.l1d = size;
    if (level == 2) c.l2 = size;
    if (level == 3) c.l3 = size;
  }
  return c;
}

KernelTuning predict_tuning(const CpuInfo& cpu) {
  KernelTuning t;
  // Prefill: a block's int8 activations (block · cols bytes) should stay in L2 while the 32-row panels stream
  // past them, but every block re-unpacks and re-transposes each panel (about the cost of 16 tokens' worth
  // of its multiply-adds), so a block shorter than ~128 tokens spends > 10% on that. Model: the largest
  // multiple of 32 with block · 4096 ≤ 3/4 of L2 (4096: a typical row length), at least 128.
  const size_t fit = cpu.l2 * 3 / 4 / 4096 / 32 * 32;
  t.prefill_token_block = std::max<size_t>(fit, 128);
  // The dot form costs one row decode per token, the outer form one per panel plus a transpose of 32 rows;
  // with the transpose about as costly as decoding 4-6 tokens' dots, the crossover is near 6 tokens. From row
  // tiles (AVX-512 VNNI) the dot form decodes each 64-byte chunk once per 4 tokens with no transpose, and
  // few-token calls stream their weights from DRAM, so it stays ahead up to ~16 tokens (measured 1.3-1.9×
  // faster than the outer form at 2-16 tokens here). NEON with I8MM: the usmmla form rearranges its 4 rows once
  // (about one token's decode) and then does twice sdot's multiply-adds per instruction, so it should lead from
  // ~4 tokens (an estimate: not measured on hardware, only tested under qemu).
  const bool vnni = cpu.isa.find("VNNI") != std::string::npos, i8mm = cpu.isa.find("I8MM") != std::string::npos;
  t.a8_outer_min_tokens = vnni ? 16 : i8mm ? 4 : 6;
  // Decode: tasks of ≥ 16 rows keep the per-task overhead below ~1% for rows of ≥ 1024 weights; more cores
  // want finer tasks for balance.
  t.dot_grain = cpu.cores > 8 ? 8 : 16;
  // Decode prefetching (4-bit row tiles): non-temporal prefetches of the next 32-column block of the tile
  // (16 rows × 16 bytes = 256 bytes ahead). The hardware prefetchers already follow the tile stream; the hint
  // changes how the lines fill L1. Measured on TinyLlama Q4_0, 2 threads, each weight kind alone over all
  // layers at ~60 GB/s: 192-384 bytes all within 3%, 512 -5% (gate|up) to -17% (down), none -17% to -31%;
  // end to end in the ~34 GB/s state 256 +9% and 512 +3% over none.
  t.decode_prefetch_bytes = 256;
  return t;
}

const KernelTuning& kernel_tuning() { return current(); }
void set_kernel_tuning(const KernelTuning& t) {
  if (t.a8_outer_min_tokens < 2 || t.dot_grain == 0) fail("kernel tuning: a8_outer_min_tokens >= 2 and dot_grain >= 1");
  current() = t;
}

std::string default_tune_profile_path() {
  const char* cache = std::getenv("LOWBIT_CACHE");
  if (cache && *cache) return std::string(cache) + "/tune.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/lowbit/tune.json";
}

std::string init_kernel_tuning(const std::string& path) {
  const CpuInfo cpu = read_cpu_info();
  const std::string p = path.empty() ? default_tune_profile_path() : path;
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) {
    if (!path.empty()) fail("{}: tune profile not found", path);
    set_kernel_tuning(predict_tuning(cpu));
    return "kernel parameters: predicted from the CPU's caches (no tune profile)";
  }
  std::ifstream f(p);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not a tune profile (bad JSON: {})", p, e.what());
  }
  auto get = [&](const char* key) -> size_t {
    if (!j.contains("params") || !j["params"].contains(key) || !j["params"][key].is_number_unsigned())
      fail("{}: tune profile field 'params.{}' is missing or not a non-negative integer", p, key);
    return j["params"][key].get<size_t>();
  };
  KernelTuning t;
  t.a8_outer_min_tokens = get("a8_outer_min_tokens");
  t.prefill_token_block = get("prefill_token_block");
  t.dot_grain = get("dot_grain");
  // (Absent from profiles saved before it existed: the prediction.)
  t.decode_prefetch_bytes = j["params"].contains("decode_prefetch_bytes") ? get("decode_prefetch_bytes")
                                                                          : predict_tuning(cpu).decode_prefetch_bytes;
  const std::string cpu_name = j.value("cpu", ""), isa = j.value("isa", "");
  if (cpu_name != cpu.model_name || isa != cpu.isa) {
    set_kernel_tuning(predict_tuning(cpu));
    note("{}: tuned for '{}' ({}), this is '{}' ({}); using the predicted parameters", p, cpu_name, isa,
         cpu.model_name, cpu.isa);
    return "kernel parameters: predicted (the tune profile is for another CPU)";
  }
  const int version = j.contains("version") && j["version"].is_number_integer() ? j["version"].get<int>() : 1;
  if (version != kTuneProfileVersion) {
    set_kernel_tuning(predict_tuning(cpu));
    note("{}: tuned for an older kernel layout (profile version {}, this lowbit writes {}); using the predicted "
         "parameters (run `lowbit tune` again)", p, version, kTuneProfileVersion);
    return "kernel parameters: predicted (the tune profile is for older kernels)";
  }
  set_kernel_tuning(t);
  return "kernel parameters: tune profile " + p;
}

void save_tune_profile(const std::string& path, const CpuInfo& cpu, const KernelTuning& t,
                       const std::string& measurements_json) {
  nlohmann::json j{{"version", kTuneProfileVersion},
                   {"cpu", cpu.model_name},
                   {"isa", cpu.isa},
                   {"caches", {{"l1d", cpu.l1d}, {"l2", cpu.l2}, {"l3", cpu.l3}}},
                   {"cores", cpu.cores},
                   {"params",
                    {{"a8_outer_min_tokens", t.a8_outer_min_tokens},
                     {"prefill_token_block", t.prefill_token_block},
                     {"dot_grain", t.dot_grain},
                     {"decode_prefetch_bytes", t.decode_prefetch_bytes}}},
                   {"measurements", nlohmann::json::parse(measurements_json)}};
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) fail("{}: cannot write the tune profile", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("{}: cannot rename the tune profile into place", path);
  }
}

}  // namespace lowbit::kernels
