// The GGUF reader against hostile and truncated input (every case must be a lowbit::Error naming the file and the
// field — never a crash, hang or huge allocation), its getters on good input, the writer round trip, ggml's
// reference quantizers, the tiny-random-Llama generator of tests/test_util.h, and the real model when present.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "io/ggml_quants.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/gguf_writer.h"
#include "test_util.h"

namespace lowbit {
namespace {

using test::error_message;
using test::TempDir;

// ----------------------------------------------------------------------------------------------------------------
// Raw GGUF bytes, for files the writer refuses to produce.
class Bytes {
 public:
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& i32(int32_t v) { return put(v); }
  Bytes& f32(float v) { return put(v); }
  Bytes& raw(std::string_view s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  Bytes& zeros(size_t n) {
    b_.resize(b_.size() + n, 0);
    return *this;
  }
  Bytes& pad(size_t align) { return zeros((align - b_.size() % align) % align); }

  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& key(std::string_view k, GgufValueType t) { return str(k).u32(static_cast<uint32_t>(t)); }
  Bytes& kv_u32(std::string_view k, uint32_t v) { return key(k, GgufValueType::UINT32).u32(v); }
  Bytes& kv_str(std::string_view k, std::string_view v) { return key(k, GgufValueType::STRING).str(v); }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }

  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }
  void save(const std::string& path) const { test::write_file_bytes(path, b_); }

 private:
  template <typename T>
  Bytes& put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b_.insert(b_.end(), tmp, tmp + sizeof(T));
    return *this;
  }
  std::vector<uint8_t> b_;
};

// Opening `path` must throw a lowbit::Error whose message names the path and contains every fragment.
void expect_gguf_error(const std::string& path, std::initializer_list<std::string_view> fragments,
                       GgufOptions options = {}) {
  auto msg = error_message([&] { GgufFile f(path, options); });
  ASSERT_TRUE(msg.has_value()) << path << " loaded, expected an error mentioning " << *fragments.begin();
  EXPECT_NE(msg->find(path), std::string::npos) << "message does not name the file: " << *msg;
  for (auto f : fragments) EXPECT_NE(msg->find(f), std::string::npos) << "'" << f << "' not in: " << *msg;
}

void expect_bytes_error(const TempDir& dir, const Bytes& b, std::initializer_list<std::string_view> fragments,
                        GgufOptions options = {}) {
  const std::string path = dir.file("bad.gguf");
  b.save(path);
  expect_gguf_error(path, fragments, options);
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

template <typename T>
GgufValue value(GgufValueType type, T v) {
  GgufValue out;
  out.type = type;
  out.v = std::move(v);
  return out;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

// A small valid file: a few KVs of different kinds and two tensors; the last tensor's size is a multiple of the
// alignment, so the file has no trailing padding and every proper prefix is truncated somewhere that matters.
uint64_t write_small_gguf(const std::string& path, uint32_t version = 3) {
  GgufWriter w(path, GgufWriterOptions{version});
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 2);
  w.add_float32("llama.rope.freq_base", 10000.0f);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"});
  const std::vector<int32_t> types = {1, 1, 3};
  w.add_int32_array("tokenizer.ggml.token_type", types);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  static const std::vector<uint8_t> q8 = pattern_bytes(34 * 2, 3);
  static const std::vector<uint8_t> f32 = pattern_bytes(8 * 4, 5);
  w.add_tensor("q8", GgmlType::Q8_0, {32, 2}, q8);
  w.add_tensor("f32", GgmlType::F32, {8}, f32);
  return w.write();
}

// ================================================================================================================
// Reader: bad input

TEST(GgufReaderBad, NonexistentFile) {
  TempDir dir;
  expect_gguf_error(dir.file("missing.gguf"), {"cannot open", "No such file"});
}

TEST(GgufReaderBad, Directory) {
  TempDir dir;
  expect_gguf_error(dir.path(), {"directory"});
}

TEST(GgufReaderBad, EmptyFile) {
  TempDir dir;
  expect_bytes_error(dir, Bytes(), {"empty"});
}

TEST(GgufReaderBad, WrongMagic) {
  TempDir dir;
  expect_bytes_error(dir, Bytes().raw("GGML").u32(3).u64(0).u64(0), {"magic"});
  expect_bytes_error(dir, Bytes().raw("\x7f" "ELF").zeros(60), {"magic"});
}

TEST(GgufReaderBad, UnsupportedVersions) {
  TempDir dir;
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    SCOPED_TRACE(v);
    expect_bytes_error(dir, Bytes().header(0, 0, v), {"version", std::to_string(v)});
  }
}

TEST(GgufReaderBad, TruncatedAtEverySectionBoundary) {
  TempDir dir;
  // Header, one KV of each shape (scalar, string, array), one tensor info, padding, data.
  Bytes b;
  b.header(1, 3);
  const size_t after_header = b.size();
  b.kv_u32("a.u32", 7);
  const size_t after_kv0 = b.size();
  b.kv_str("a.str", "hello");
  const size_t after_kv1 = b.size();
  b.key("a.arr", GgufValueType::ARRAY).u32(static_cast<uint32_t>(GgufValueType::INT32)).u64(2).i32(1).i32(2);
  const size_t after_kvs = b.size();
  b.tensor("t", {8}, 0, 0);
  const size_t after_infos = b.size();
  b.pad(32);
  const size_t data_start = b.size();
  b.zeros(32);
  const std::string path = dir.file("cut.gguf");
  ASSERT_NO_THROW(b.save(path); GgufFile f(path));

  // Each message must name the file and contain one of the fragments: the field being read, or — for cuts early
  // in the KV section — the kv_count that the remaining bytes can no longer hold.
  struct Cut {
    size_t at;
    std::vector<std::string_view> any_of;
  };
  const std::vector<Cut> cuts = {
      {4, {"header version"}},
      {8, {"tensor_count"}},
      {16, {"kv_count"}},
      {after_header, {"metadata key #0", "kv_count 3"}},
      {after_header + 8 + 5, {"'a.u32' value type", "kv_count 3"}},  // after the key
      {after_header + 8 + 5 + 4, {"metadata 'a.u32'", "kv_count 3"}},  // after the value type
      {after_kv0, {"metadata key #1", "kv_count 3"}},
      {after_kv0 + 8 + 5 + 4, {"metadata 'a.str' length", "kv_count 3"}},
      {after_kv0 + 8 + 5 + 4 + 8, {"metadata 'a.str'", "kv_count 3"}},
      {after_kv1 + 8 + 5 + 4, {"'a.arr' element type"}},
      {after_kv1 + 8 + 5 + 4 + 4, {"'a.arr' element count"}},
      {after_kv1 + 8 + 5 + 4 + 4 + 8, {"'a.arr'"}},
      {after_kvs, {"tensor #0 name"}},
      {after_kvs + 8 + 1, {"tensor 't' n_dims"}},
      {after_kvs + 8 + 1 + 4, {"tensor 't' dimension"}},
      {after_kvs + 8 + 1 + 4 + 8, {"tensor 't' type"}},
      {after_kvs + 8 + 1 + 4 + 8 + 4, {"tensor 't' data offset"}},
      {after_infos, {"data section"}},
      {data_start, {"tensor 't'", "past the end"}},
      {data_start + 16, {"tensor 't'", "past the end"}},
      {b.size() - 1, {"tensor 't'", "past the end"}},
  };
  for (const Cut& c : cuts) {
    SCOPED_TRACE(testing::Message() << "cut at " << c.at);
    std::vector<uint8_t> prefix(b.bytes().begin(), b.bytes().begin() + static_cast<ptrdiff_t>(c.at));
    test::write_file_bytes(path, prefix);
    auto msg = error_message([&] { GgufFile f(path); });
    ASSERT_TRUE(msg.has_value());
    EXPECT_NE(msg->find(path), std::string::npos) << *msg;
    bool found = false;
    for (auto f : c.any_of) found = found || msg->find(f) != std::string::npos;
    EXPECT_TRUE(found) << "'" << c.any_of[0] << "' not in: " << *msg;
  }
}

TEST(GgufReaderBad, EveryPrefixOfAValidFileFails) {
  TempDir dir;
  const std::string full = dir.file("full.gguf");
  const uint64_t size = write_small_gguf(full);
  const std::vector<uint8_t> bytes = test::read_file_bytes(full);
  ASSERT_EQ(bytes.size(), size);
  ASSERT_NO_THROW(GgufFile f(full));
  const std::string path = dir.file("prefix.gguf");
  int failures = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    test::write_file_bytes(path, std::span<const uint8_t>(bytes.data(), n));
    auto msg = error_message([&] { GgufFile f(path); });
    if (!msg) {
      ADD_FAILURE() << "a prefix of " << n << " of " << bytes.size() << " bytes loaded";
      if (++failures > 5) break;
      continue;
    }
    if (msg->find(path) == std::string::npos) ADD_FAILURE() << "prefix " << n << ": path not in: " << *msg;
  }
}

TEST(GgufReaderBad, EveryCorruptedHeaderByteFailsCleanly) {
  // Overwrite each byte before the data section with a few values: the file must either load or give a
  // lowbit::Error naming it (run under ASan/UBSan, this also proves no read goes out of bounds).
  TempDir dir;
  const std::string full = dir.file("full.gguf");
  write_small_gguf(full);
  const std::vector<uint8_t> bytes = test::read_file_bytes(full);
  const uint64_t header_end = GgufFile(full).data_offset();
  const std::string path = dir.file("corrupt.gguf");
  int errors = 0;
  for (uint64_t i = 0; i < header_end; ++i) {
    for (uint8_t v : {uint8_t(0x00), uint8_t(0x01), uint8_t(0x7f), uint8_t(0xff)}) {
      if (bytes[i] == v) continue;
      std::vector<uint8_t> b = bytes;
      b[i] = v;
      test::write_file_bytes(path, b);
      auto msg = error_message([&] { GgufFile f(path); });
      if (msg) {
        ++errors;
        ASSERT_NE(msg->find(path), std::string::npos) << "byte " << i << " = " << int(v) << ": " << *msg;
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(GgufReaderBad, TensorDataPastTheEnd) {
  TempDir dir;
  Bytes b;
  b.header(1, 0).tensor("w", {8, 4}, 0, 0).pad(32).zeros(127);  // needs 128 bytes
  expect_bytes_error(dir, b, {"tensor 'w'", "past the end"});
  Bytes c;
  c.header(1, 0).tensor("w", {8}, 0, 64).pad(32).zeros(64);  // offset 64 + 32 bytes > 64
  expect_bytes_error(dir, c, {"tensor 'w'", "past the end"});
  Bytes d;
  d.header(1, 0).tensor("w", {8}, 0, uint64_t(1) << 62).pad(32).zeros(32);  // offset far past the end
  expect_bytes_error(dir, d, {"tensor 'w'", "past the end"});
  Bytes e;
  e.header(1, 0).tensor("w", {8}, 0, std::numeric_limits<uint64_t>::max() & ~uint64_t(31)).pad(32).zeros(32);
  expect_bytes_error(dir, e, {"tensor 'w'", "past the end"});
}

TEST(GgufReaderBad, TensorOffsetNotAligned) {
  TempDir dir;
  Bytes b;
  b.header(1, 0).tensor("w", {8}, 0, 4).pad(32).zeros(64);
  expect_bytes_error(dir, b, {"tensor 'w'", "data offset 4", "alignment 32"});
  Bytes c;  // aligned to the default 32 but not to a declared 64
  c.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, 0, 32).pad(64).zeros(128);
  expect_bytes_error(dir, c, {"tensor 'w'", "data offset 32", "alignment 64"});
}

TEST(GgufReaderBad, UnknownTensorType) {
  TempDir dir;
  for (uint32_t type : {9999u, 4u, 5u, 31u, 36u, 0xffffffffu}) {
    SCOPED_TRACE(type);
    Bytes b;
    b.header(1, 0).tensor("w", {32}, type, 0).pad(32).zeros(256);
    expect_bytes_error(dir, b, {"tensor 'w'", "unknown tensor type", std::to_string(type)});
    // ... even when unsupported types are allowed
    expect_bytes_error(dir, b, {"unknown tensor type"}, GgufOptions{.allow_unsupported_types = true});
  }
}

TEST(GgufReaderBad, KnownButUnsupportedType) {
  TempDir dir;
  const std::string path = dir.file("q5k.gguf");
  GgufWriter w(path);
  w.add_tensor("blk.0.ffn_down.weight", GgmlType::Q5_K, {256, 2}, pattern_bytes(2 * 176, 9));
  w.write();
  expect_gguf_error(path, {"blk.0.ffn_down.weight", "Q5_K"});
  GgufFile f(path, GgufOptions{.allow_unsupported_types = true});
  const GgufTensor& t = f.tensor("blk.0.ffn_down.weight");
  EXPECT_EQ(t.type, GgmlType::Q5_K);
  EXPECT_EQ(t.n_bytes, 2u * 176u);
  EXPECT_EQ(ggml_type_name(t.type), "Q5_K");
  EXPECT_EQ(std::memcmp(t.data, pattern_bytes(2 * 176, 9).data(), t.n_bytes), 0);
}

TEST(GgufReaderBad, RowLengthNotAMultipleOfTheBlock) {
  TempDir dir;
  Bytes b;
  b.header(1, 0).tensor("w", {31, 2}, static_cast<uint32_t>(GgmlType::Q4_0), 0).pad(32).zeros(64);
  expect_bytes_error(dir, b, {"tensor 'w'", "row length 31", "Q4_0"});
}

TEST(GgufReaderBad, AbsurdCounts) {
  TempDir dir;
  const uint64_t huge = uint64_t(1) << 60;
  expect_bytes_error(dir, Bytes().header(huge, 0).zeros(64), {"tensor_count", std::to_string(huge)});
  expect_bytes_error(dir, Bytes().header(0, huge).zeros(64), {"kv_count", std::to_string(huge)});
  expect_bytes_error(dir, Bytes().header(huge, huge).zeros(64), {"count"});
  // array element count
  for (auto et : {GgufValueType::UINT8, GgufValueType::INT32, GgufValueType::STRING, GgufValueType::ARRAY}) {
    SCOPED_TRACE(gguf_value_type_name(et));
    Bytes b;
    b.header(0, 1).key("tokenizer.ggml.tokens", GgufValueType::ARRAY).u32(static_cast<uint32_t>(et)).u64(huge).zeros(64);
    expect_bytes_error(dir, b, {"metadata 'tokenizer.ggml.tokens'", std::to_string(huge)});
  }
  // string lengths: a key, a value, an array item, a tensor name
  expect_bytes_error(dir, Bytes().header(0, 1).u64(huge).zeros(64), {"metadata key #0", std::to_string(huge)});
  expect_bytes_error(dir, Bytes().header(0, 1).key("general.name", GgufValueType::STRING).u64(huge).zeros(64),
                     {"metadata 'general.name'", std::to_string(huge)});
  expect_bytes_error(dir,
                     Bytes()
                         .header(0, 1)
                         .key("tokenizer.ggml.merges", GgufValueType::ARRAY)
                         .u32(static_cast<uint32_t>(GgufValueType::STRING))
                         .u64(2)
                         .str("a b")
                         .u64(huge)
                         .zeros(64),
                     {"metadata 'tokenizer.ggml.merges'", std::to_string(huge)});
  expect_bytes_error(dir, Bytes().header(1, 0).u64(huge).zeros(64), {"tensor #0 name", std::to_string(huge)});
  // the largest possible values
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  expect_bytes_error(dir, Bytes().header(max, 0).zeros(64), {"tensor_count"});
  expect_bytes_error(dir, Bytes().header(0, max).zeros(64), {"kv_count"});
  expect_bytes_error(dir, Bytes().header(0, 1).u64(max).zeros(64), {"metadata key #0"});
}

TEST(GgufReaderBad, TensorDims) {
  TempDir dir;
  {
    Bytes b;
    b.header(1, 0).tensor("w", {8, 1, 1, 1, 1}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "5 dimensions"});
  }
  {
    Bytes b;
    b.header(1, 0).str("w").u32(0xffffffffu).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "dimensions"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("w", {}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "0 dimensions"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("w", {8, 0}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "dimension 1 is 0"});
  }
  {  // each dimension is plausible, their product overflows 64 bits
    Bytes b;
    b.header(1, 0).tensor("w", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "overflows"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("w", {uint64_t(1) << 40, uint64_t(1) << 20, uint64_t(1) << 4}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "overflows"});
  }
  {  // the element count fits, the byte size (× 4 for F32) does not — then it is simply past the end
    Bytes b;
    b.header(1, 0).tensor("w", {uint64_t(1) << 31, uint64_t(1) << 31, uint64_t(1) << 1}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("w", {std::numeric_limits<uint64_t>::max()}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"tensor 'w'", "dimension 0"});
  }
}

TEST(GgufReaderBad, DuplicateKeysAndTensors) {
  TempDir dir;
  expect_bytes_error(dir, Bytes().header(0, 2).kv_u32("llama.block_count", 1).kv_str("llama.block_count", "x"),
                     {"'llama.block_count'", "twice"});
  Bytes b;
  b.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad(32).zeros(64);
  expect_bytes_error(dir, b, {"tensor name 'w'", "twice"});
}

TEST(GgufReaderBad, BadAlignment) {
  TempDir dir;
  for (uint32_t al : {0u, 3u, 48u, 1u << 21, 0x80000000u}) {
    SCOPED_TRACE(al);
    Bytes b;
    b.header(1, 1).kv_u32("general.alignment", al).tensor("w", {8}, 0, 0).pad(32).zeros(64);
    expect_bytes_error(dir, b, {"general.alignment", std::to_string(al)});
  }
  expect_bytes_error(dir, Bytes().header(0, 1).kv_str("general.alignment", "32"), {"general.alignment", "integer"});
  expect_bytes_error(dir, Bytes().header(0, 1).key("general.alignment", GgufValueType::INT32).i32(-32),
                     {"general.alignment", "-32"});
  expect_bytes_error(dir, Bytes().header(0, 1).key("general.alignment", GgufValueType::FLOAT32).f32(32.0f),
                     {"general.alignment"});
}

TEST(GgufReaderBad, BadValues) {
  TempDir dir;
  expect_bytes_error(dir, Bytes().header(0, 1).key("tokenizer.ggml.add_bos_token", GgufValueType::BOOL).u8(2),
                     {"'tokenizer.ggml.add_bos_token'", "bool", "2"});
  expect_bytes_error(dir,
                     Bytes()
                         .header(0, 1)
                         .key("flags", GgufValueType::ARRAY)
                         .u32(static_cast<uint32_t>(GgufValueType::BOOL))
                         .u64(3)
                         .u8(0)
                         .u8(1)
                         .u8(255),
                     {"'flags'", "bool", "255"});
  expect_bytes_error(dir, Bytes().header(0, 1).str("k").u32(13).u32(0), {"'k'", "unknown value type 13"});
  expect_bytes_error(dir, Bytes().header(0, 1).str("k").u32(0xffffffffu).u32(0), {"'k'", "unknown value type"});
  expect_bytes_error(dir, Bytes().header(0, 1).key("k", GgufValueType::ARRAY).u32(13).u64(1).u32(0),
                     {"'k'", "unknown array element type 13"});
  // Arrays nested deeper than the reader allows.
  Bytes deep;
  deep.header(0, 1).key("k", GgufValueType::ARRAY);
  for (int i = 0; i < 8; ++i) deep.u32(static_cast<uint32_t>(GgufValueType::ARRAY)).u64(1);
  deep.zeros(64);
  expect_bytes_error(dir, deep, {"'k'", "nests"});
}

TEST(GgufReaderBad, ManyTinyArrayItemsStayBounded) {
  // The per-item representation is larger than the 1-byte encoding; a count that fills the file is still bounded
  // by the file size (here 256 KiB of u8 items), and each bad item is caught.
  TempDir dir;
  Bytes b;
  const uint64_t n = 256 * 1024;
  b.header(0, 1).key("k", GgufValueType::ARRAY).u32(static_cast<uint32_t>(GgufValueType::UINT8)).u64(n).zeros(n);
  b.save(dir.file("big.gguf"));
  GgufFile f(dir.file("big.gguf"));
  EXPECT_EQ(f.get_int_array("k").size(), n);
}

// ================================================================================================================
// Reader: good input

TEST(GgufReader, TypedGetters) {
  TempDir dir;
  const std::string path = dir.file("getters.gguf");
  GgufWriter w(path);
  w.add_uint8("u8", 200);
  w.add_int8("i8", -5);
  w.add_uint16("u16", 60000);
  w.add_int16("i16", -30000);
  w.add_uint32("u32", 4000000000u);
  w.add_int32("i32", -2000000000);
  w.add_uint64("u64", 1ull << 62);
  w.add_uint64("u64max", std::numeric_limits<uint64_t>::max());
  w.add_int64("i64", -(1ll << 62));
  w.add_float32("f32", 0.1f);
  w.add_float64("f64", 3.141592653589793);
  w.add_bool("yes", true);
  w.add_bool("no", false);
  w.add_string("s", "héllo");
  w.add_string_array("sa", {"x", "", "zz"});
  const std::vector<int32_t> ia = {-1, 0, 7};
  w.add_int32_array("ia", ia);
  const std::vector<float> fa = {0.5f, -2.0f};
  w.add_float32_array("fa", fa);
  w.write();

  GgufFile f(path);
  EXPECT_EQ(f.get_uint("u8"), 200u);
  EXPECT_EQ(f.get_uint("u16"), 60000u);
  EXPECT_EQ(f.get_uint("u32"), 4000000000u);
  EXPECT_EQ(f.get_uint("u64"), 1ull << 62);
  EXPECT_EQ(f.get_int("i8", 0), -5);
  EXPECT_EQ(f.get_int("i16", 0), -30000);
  EXPECT_EQ(f.get_int("i32", 0), -2000000000);
  EXPECT_EQ(f.get_int("i64", 0), -(1ll << 62));
  EXPECT_EQ(f.get_int("u32", 0), 4000000000ll);
  EXPECT_EQ(f.get_int("missing", 42), 42);
  EXPECT_EQ(f.get_uint("missing", 7), 7u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("f32")), 0.1f);
  EXPECT_DOUBLE_EQ(f.get_float("f64"), 3.141592653589793);
  EXPECT_DOUBLE_EQ(f.get_float("u8"), 200.0);
  EXPECT_DOUBLE_EQ(f.get_float("missing", 1.5), 1.5);
  EXPECT_TRUE(f.get_bool("yes", false));
  EXPECT_FALSE(f.get_bool("no", true));
  EXPECT_TRUE(f.get_bool("missing", true));
  EXPECT_EQ(f.get_string("s"), "héllo");
  EXPECT_EQ(f.get_string("missing", "fb"), "fb");
  EXPECT_EQ(f.get_string_array("sa"), (std::vector<std::string>{"x", "", "zz"}));
  EXPECT_EQ(f.get_int_array("ia"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(f.get_float_array("fa"), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(f.get_float_array("ia"), (std::vector<double>{-1.0, 0.0, 7.0}));
  EXPECT_TRUE(f.has("u8"));
  EXPECT_FALSE(f.has("missing"));
  EXPECT_EQ(f.find("missing"), nullptr);
  ASSERT_NE(f.find("u16"), nullptr);
  EXPECT_EQ(f.find("u16")->type, GgufValueType::UINT16);

  // Errors name the file, the key and what was found.
  auto expect_err = [&](const std::function<void()>& fn, std::initializer_list<std::string_view> frags) {
    auto msg = error_message(fn);
    ASSERT_TRUE(msg.has_value());
    EXPECT_NE(msg->find(path), std::string::npos) << *msg;
    for (auto fr : frags) EXPECT_NE(msg->find(fr), std::string::npos) << "'" << fr << "' not in: " << *msg;
  };
  expect_err([&] { f.get_uint("missing"); }, {"'missing'", "missing"});
  expect_err([&] { f.get_uint("i8"); }, {"'i8'", "negative"});
  expect_err([&] { f.get_uint("s"); }, {"'s'", "string"});
  expect_err([&] { f.get_int("u64max", 0); }, {"'u64max'", "out of range"});
  expect_err([&] { f.get_float("s"); }, {"'s'", "string"});
  expect_err([&] { f.get_float("missing"); }, {"'missing'"});
  expect_err([&] { f.get_bool("u8", false); }, {"'u8'", "uint8"});
  expect_err([&] { f.get_string("u8"); }, {"'u8'", "uint8"});
  expect_err([&] { f.get_string("missing"); }, {"'missing'"});
  expect_err([&] { f.get_string_array("ia"); }, {"'ia'", "strings"});
  expect_err([&] { f.get_string_array("s"); }, {"'s'", "array"});
  expect_err([&] { f.get_int_array("fa"); }, {"'fa'", "float32"});
  expect_err([&] { f.get_float_array("sa"); }, {"'sa'", "string"});
  expect_err([&] { f.get_int_array("missing"); }, {"'missing'"});

  EXPECT_EQ(gguf_value_to_string(*f.find("sa")), "[\"x\", \"\", \"zz\"]");
  EXPECT_EQ(gguf_value_to_string(*f.find("u8")), "200");
}

TEST(GgufReader, TensorLookupAndData) {
  TempDir dir;
  const std::string path = dir.file("tensors.gguf");
  const auto a = pattern_bytes(3 * 5 * 4, 11);
  const auto b = pattern_bytes(34 * 4, 12);
  GgufWriter w(path);
  w.add_tensor("a", GgmlType::F32, {3, 5}, a);  // 60 bytes: padded to 64
  w.add_tensor("b", GgmlType::Q8_0, {64, 2}, b);
  w.write();

  GgufFile f(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  auto msg = error_message([&] { f.tensor("nope"); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find(path), std::string::npos);
  EXPECT_NE(msg->find("'nope'"), std::string::npos);

  const GgufTensor& ta = f.tensor("a");
  EXPECT_EQ(ta.ne, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(ta.n_elements, 15u);
  EXPECT_EQ(ta.n_bytes, 60u);
  EXPECT_EQ(ta.offset, 0u);
  EXPECT_EQ(std::memcmp(ta.data, a.data(), a.size()), 0);
  const GgufTensor& tb = f.tensor("b");
  EXPECT_EQ(tb.type, GgmlType::Q8_0);
  EXPECT_EQ(tb.n_elements, 128u);
  EXPECT_EQ(tb.n_bytes, 34u * 4);
  EXPECT_EQ(tb.offset, 64u);
  EXPECT_EQ(std::memcmp(tb.data, b.data(), b.size()), 0);
  // Data pointers: the data section starts aligned, so do the tensors (the mapping is page aligned).
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta.data) % 32, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(tb.data) % 32, 0u);
  EXPECT_EQ(tb.data - ta.data, 64);
  EXPECT_EQ(f.file_size(), f.data_offset() + 64 + 160);
}

TEST(GgufReader, Version2File) {
  TempDir dir;
  const std::string path = dir.file("v2.gguf");
  write_small_gguf(path, 2);
  GgufFile f(path);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 3u);
  EXPECT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(std::memcmp(f.tensor("f32").data, pattern_bytes(32, 5).data(), 32), 0);
}

TEST(GgufReader, SharedVocabularyFile) {
  const std::string path = test::shared_dir() + "/tokenizers/ggml-vocab-gpt-2.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  GgufFile f(path);
  EXPECT_EQ(f.tensors().size(), 0u);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 50257u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges").size(), 50000u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id"), 50256u);
}

// ================================================================================================================
// The real model (scripts/get-models.sh), if present.

TEST(GgufRealModel, SmolLM2) {
  const std::string path = test::real_model_path();
  if (path.empty()) GTEST_SKIP() << "no model: set LOWBIT_MODEL or run scripts/get-models.sh";
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.metadata().size(), 33u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("llama.block_count"), 30u);
  EXPECT_EQ(f.get_uint("llama.context_length"), 8192u);
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 576u);
  EXPECT_EQ(f.get_uint("llama.feed_forward_length"), 1536u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count"), 9u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(f.get_uint("llama.rope.dimension_count"), 64u);
  EXPECT_EQ(f.get_uint("llama.vocab_size"), 49152u);
  EXPECT_DOUBLE_EQ(f.get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f.get_uint("general.file_type"), 3u);  // MOSTLY_Q4_1
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token", true));
  EXPECT_NE(f.get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);

  EXPECT_EQ(f.find_tensor("output.weight"), nullptr) << "SmolLM2 ties the output to the embedding";
  const GgufTensor& embd = f.tensor("token_embd.weight");
  EXPECT_EQ(embd.type, GgmlType::Q8_0);
  EXPECT_EQ(embd.ne, (std::vector<uint64_t>{576, 49152}));
  const GgufTensor& down = f.tensor("blk.0.ffn_down.weight");
  EXPECT_EQ(down.type, GgmlType::Q4_1);
  EXPECT_EQ(down.ne, (std::vector<uint64_t>{1536, 576}));
  EXPECT_EQ(f.tensor("blk.29.attn_k.weight").ne, (std::vector<uint64_t>{576, 192}));
  EXPECT_EQ(f.tensor("blk.29.attn_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(f.tensor("output_norm.weight").ne, (std::vector<uint64_t>{576}));

  uint64_t end = 0;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    end = std::max(end, f.data_offset() + t.offset + t.n_bytes);
  }
  EXPECT_LE(end, f.file_size());
  EXPECT_GT(end + 64, f.file_size());  // the data runs to the end of the file

  // Dequantized weights look like weights: finite, small, not all zero.
  std::vector<float> row(576);
  dequantize_ggml(embd.type, embd.data + 100 * (576 / 32 * 34), row.data(), 576);
  double ss = 0;
  for (float v : row) {
    ASSERT_TRUE(std::isfinite(v));
    ss += double(v) * v;
  }
  EXPECT_GT(ss, 0.0);
  EXPECT_LT(std::sqrt(ss / 576), 1.0);
  std::vector<float> norm(576);
  dequantize_ggml(GgmlType::F32, f.tensor("output_norm.weight").data, norm.data(), 576);
  for (float v : norm) EXPECT_TRUE(std::isfinite(v));
}

// ================================================================================================================
// Writer

TEST(GgufWriter, RoundTripEveryValueTypeAndTensorType) {
  TempDir dir;
  const std::string path = dir.file("all.gguf");
  GgufWriter w(path);
  w.add_uint8("t.u8", 255);
  w.add_int8("t.i8", -128);
  w.add_uint16("t.u16", 65535);
  w.add_int16("t.i16", -32768);
  w.add_uint32("t.u32", 0xffffffffu);
  w.add_int32("t.i32", std::numeric_limits<int32_t>::min());
  w.add_uint64("t.u64", std::numeric_limits<uint64_t>::max());
  w.add_int64("t.i64", std::numeric_limits<int64_t>::min());
  w.add_float32("t.f32", -1.25e-3f);
  w.add_float64("t.f64", 1.0 / 3.0);
  w.add_bool("t.true", true);
  w.add_bool("t.false", false);
  w.add_string("t.str", "a \"quoted\" ünïcode ✓ string\nwith newline");
  w.add_string("t.empty", "");
  w.add_string_array("a.str", {"<s>", "", "Ġthe", std::string("\0x", 2)});
  const std::vector<int32_t> i32 = {std::numeric_limits<int32_t>::min(), -1, 0, 1, std::numeric_limits<int32_t>::max()};
  w.add_int32_array("a.i32", i32);
  const std::vector<uint32_t> u32 = {0, 1, 0xffffffffu};
  w.add_uint32_array("a.u32", u32);
  const std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min(), 5};
  w.add_int64_array("a.i64", i64);
  const std::vector<float> f32 = {-0.0f, 1.5f, std::numeric_limits<float>::infinity(), 1e-30f};
  w.add_float32_array("a.f32", f32);
  const std::vector<double> f64 = {1e300, -2.5};
  w.add_float64_array("a.f64", f64);
  w.add_int32_array("a.empty", std::vector<int32_t>{});
  {
    std::vector<GgufValue> bools;
    for (bool b : {true, false, true}) bools.push_back(value(GgufValueType::BOOL, b));
    w.add_array("a.bool", GgufValueType::BOOL, bools);
    std::vector<GgufValue> u8s;
    for (uint64_t v : {0, 128, 255}) u8s.push_back(value(GgufValueType::UINT8, v));
    w.add_array("a.u8", GgufValueType::UINT8, u8s);
    std::vector<GgufValue> i16s;
    for (int64_t v : {-32768, 0, 32767}) i16s.push_back(value(GgufValueType::INT16, v));
    w.add_array("a.i16", GgufValueType::INT16, i16s);
    // nested: [[1, 2], [], [3]] of int32
    std::vector<GgufValue> outer;
    for (std::vector<int64_t> inner : {std::vector<int64_t>{1, 2}, std::vector<int64_t>{}, std::vector<int64_t>{3}}) {
      GgufArray a{GgufValueType::INT32, {}};
      for (int64_t v : inner) a.items.push_back(value(GgufValueType::INT32, v));
      outer.push_back(value(GgufValueType::ARRAY, std::move(a)));
    }
    w.add_array("a.nested", GgufValueType::ARRAY, outer);
  }
  // Tensors of each type lowbit computes with, in several shapes; data made by our quantizers.
  struct T {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<T> ts;
  auto make = [&](std::string name, GgmlType type, std::vector<uint64_t> ne) {
    uint64_t n = 1;
    for (auto d : ne) n *= d;
    auto x = test::random_floats(n, ts.size() + 1);
    ts.push_back({std::move(name), type, ne, quantize_ggml(type, x.data(), static_cast<int64_t>(n))});
  };
  make("f32.1d", GgmlType::F32, {7});
  make("f16.2d", GgmlType::F16, {5, 3});
  make("q8_0.2d", GgmlType::Q8_0, {64, 3});
  make("q4_0.3d", GgmlType::Q4_0, {32, 2, 3});
  make("q4_1.4d", GgmlType::Q4_1, {96, 1, 2, 2});
  make("bf16.2d", GgmlType::BF16, {33, 2});
  for (const auto& t : ts) w.add_tensor(t.name, t.type, t.ne, t.data);
  const uint64_t size = w.write();

  GgufFile f(path);
  EXPECT_EQ(f.file_size(), size);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.metadata().size(), w.metadata().size());
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    const auto& [k, v] = f.metadata()[i];
    const auto& [wk, wv] = w.metadata()[i];
    EXPECT_EQ(k, wk);
    EXPECT_EQ(v.type, wv.type) << k;
    EXPECT_EQ(gguf_value_to_string(v, 100), gguf_value_to_string(wv, 100)) << k;
  }
  EXPECT_EQ(f.find("t.u8")->type, GgufValueType::UINT8);
  EXPECT_EQ(std::get<uint64_t>(f.find("t.u64")->v), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(std::get<int64_t>(f.find("t.i64")->v), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(std::get<int64_t>(f.find("t.i8")->v), -128);
  EXPECT_EQ(f.get_float("t.f32"), static_cast<double>(-1.25e-3f));
  EXPECT_EQ(f.get_float("t.f64"), 1.0 / 3.0);
  EXPECT_EQ(f.get_string("t.str"), "a \"quoted\" ünïcode ✓ string\nwith newline");
  EXPECT_EQ(f.get_string("t.empty"), "");
  EXPECT_EQ(f.get_string_array("a.str"), (std::vector<std::string>{"<s>", "", "Ġthe", std::string("\0x", 2)}));
  EXPECT_EQ(f.get_int_array("a.i32"), (std::vector<int64_t>(i32.begin(), i32.end())));
  EXPECT_EQ(f.get_int_array("a.u32"), (std::vector<int64_t>{0, 1, 0xffffffffll}));
  EXPECT_EQ(f.get_int_array("a.i64"), (std::vector<int64_t>(i64.begin(), i64.end())));
  const auto rf32 = f.get_float_array("a.f32");
  ASSERT_EQ(rf32.size(), 4u);
  EXPECT_TRUE(std::signbit(rf32[0]));
  EXPECT_EQ(rf32[2], std::numeric_limits<double>::infinity());
  EXPECT_EQ(static_cast<float>(rf32[3]), 1e-30f);
  EXPECT_EQ(f.get_float_array("a.f64"), (std::vector<double>{1e300, -2.5}));
  EXPECT_TRUE(f.get_int_array("a.empty").empty());
  EXPECT_EQ(std::get<GgufArray>(f.find("a.empty")->v).elem_type, GgufValueType::INT32);
  EXPECT_EQ(f.get_int_array("a.u8"), (std::vector<int64_t>{0, 128, 255}));
  EXPECT_EQ(f.get_int_array("a.i16"), (std::vector<int64_t>{-32768, 0, 32767}));
  const auto& bools = std::get<GgufArray>(f.find("a.bool")->v);
  ASSERT_EQ(bools.items.size(), 3u);
  EXPECT_TRUE(std::get<bool>(bools.items[0].v));
  EXPECT_FALSE(std::get<bool>(bools.items[1].v));
  EXPECT_EQ(gguf_value_to_string(*f.find("a.nested")), "[[1, 2], [], [3]]");

  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    SCOPED_TRACE(ts[i].name);
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.type, ts[i].type);
    EXPECT_EQ(t.ne, ts[i].ne);
    EXPECT_EQ(t.n_bytes, ts[i].data.size());
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u);
    EXPECT_EQ(std::memcmp(t.data, ts[i].data.data(), t.n_bytes), 0);
  }
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"all.gguf"}) << "temporary file left behind";
}

TEST(GgufWriter, VersionTwoAndCustomAlignment) {
  TempDir dir;
  for (uint32_t align : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(align);
    const std::string path = dir.file("al.gguf");
    GgufWriter w(path, GgufWriterOptions{.version = 2});
    w.add_uint32("general.alignment", align);
    EXPECT_EQ(w.alignment(), align);
    w.add_tensor("a", GgmlType::F32, {3}, pattern_bytes(12, 1));
    w.add_tensor("b", GgmlType::F16, {5}, pattern_bytes(10, 2));
    w.write();
    GgufFile f(path);
    EXPECT_EQ(f.version(), 2u);
    EXPECT_EQ(f.alignment(), align);
    EXPECT_EQ(f.data_offset() % align, 0u);
    EXPECT_EQ(f.tensor("b").offset, (12 + align - 1) / align * align);
    EXPECT_EQ(std::memcmp(f.tensor("b").data, pattern_bytes(10, 2).data(), 10), 0);
  }
  // A signed alignment value works too.
  GgufWriter w(dir.file("i.gguf"));
  w.add_int32("general.alignment", 16);
  EXPECT_EQ(w.alignment(), 16u);
}

TEST(GgufWriter, StreamingSource) {
  TempDir dir;
  const std::string path = dir.file("stream.gguf");
  // 3 MiB + a bit: larger than the writer's buffer, written in odd-sized chunks, one chunk bigger than the buffer.
  const uint64_t rows = 24577, row = 32;
  const uint64_t n_bytes = rows * row * 4;
  const auto expected = pattern_bytes(n_bytes, 77);
  GgufWriter w(path);
  w.add_tensor("small", GgmlType::F32, {4}, pattern_bytes(16, 3));
  w.add_tensor("big", GgmlType::F32, {row, rows}, [&](GgufSink& sink) {
    size_t pos = 0, step = 1;
    while (pos < expected.size()) {
      size_t n = std::min<size_t>(step, expected.size() - pos);
      if (pos == 4096) n = std::min<size_t>(1500000, expected.size() - pos);
      sink.write(expected.data() + pos, n);
      pos += n;
      step = step * 3 + 1;
      if (step > 100000) step = 7;
    }
  });
  w.add_tensor("empty-chunks", GgmlType::F16, {2}, [](GgufSink& sink) {
    const uint8_t four[4] = {1, 2, 3, 4};
    sink.write(four, 0);
    sink.write(std::span<const uint8_t>(four, 4));
  });
  w.write();
  GgufFile f(path);
  const GgufTensor& t = f.tensor("big");
  ASSERT_EQ(t.n_bytes, n_bytes);
  EXPECT_EQ(std::memcmp(t.data, expected.data(), n_bytes), 0);
  EXPECT_EQ(f.tensor("empty-chunks").data[3], 4);
}

TEST(GgufWriter, TensorDataIsCopiedUnlessAView) {
  TempDir dir;
  const std::string path = dir.file("own.gguf");
  std::vector<uint8_t> copied = pattern_bytes(16, 1), viewed = pattern_bytes(16, 2);
  GgufWriter w(path);
  w.add_tensor("temporary", GgmlType::F32, {4}, pattern_bytes(16, 3));  // moved in: outlives the statement
  w.add_tensor("copied", GgmlType::F32, {4}, copied);
  w.add_tensor_view("viewed", GgmlType::F32, {4}, viewed);
  copied[0] = viewed[0] = 0xee;  // after add, before write
  w.write();
  GgufFile f(path);
  EXPECT_EQ(std::memcmp(f.tensor("temporary").data, pattern_bytes(16, 3).data(), 16), 0);
  EXPECT_EQ(std::memcmp(f.tensor("copied").data, pattern_bytes(16, 1).data(), 16), 0);
  EXPECT_EQ(f.tensor("viewed").data[0], 0xee);
  auto msg = error_message([&] { w.add_tensor_view("short", GgmlType::F32, {5}, viewed); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("'short'"), std::string::npos) << *msg;
}

TEST(GgufWriter, FailedSourceLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("fail.gguf");
  auto attempt = [&](GgufTensorSource src, std::initializer_list<std::string_view> frags) {
    GgufWriter w(path);
    w.add_string("general.name", "x");
    w.add_tensor("ok", GgmlType::F32, {8}, pattern_bytes(32, 1));
    w.add_tensor("bad", GgmlType::F32, {8}, std::move(src));
    auto msg = error_message([&] { w.write(); });
    ASSERT_TRUE(msg.has_value());
    EXPECT_NE(msg->find(path), std::string::npos) << *msg;
    for (auto fr : frags) EXPECT_NE(msg->find(fr), std::string::npos) << "'" << fr << "' not in: " << *msg;
  };
  const auto data = pattern_bytes(40, 1);
  attempt([&](GgufSink& s) { s.write(data.data(), 31); }, {"'bad'", "wrote 31 bytes, expected 32"});
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  attempt([&](GgufSink& s) { s.write(data.data(), 33); }, {"'bad'", "more than its 32 bytes"});
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  attempt([&](GgufSink& s) { s.write(data.data(), 16); s.write(data.data(), 17); }, {"'bad'", "more than"});
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  attempt([](GgufSink&) { throw std::runtime_error("disk on fire"); }, {"'bad'", "disk on fire"});
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  attempt([](GgufSink&) { fail("source error"); }, {"source error"});
  EXPECT_TRUE(dir_entries(dir.path()).empty());

  // An existing file at the path survives a failed write untouched.
  write_small_gguf(path);
  const auto before = test::read_file_bytes(path);
  attempt([](GgufSink&) { throw std::runtime_error("nope"); }, {"nope"});
  EXPECT_EQ(test::read_file_bytes(path), before);
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"fail.gguf"});
}

TEST(GgufWriter, UnwritablePath) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.gguf");
  GgufWriter w(path);
  auto msg = error_message([&] { w.write(); });
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find(path), std::string::npos) << *msg;
  EXPECT_NE(msg->find("No such file"), std::string::npos) << *msg;
}

TEST(GgufWriter, RejectsInvalidInputWhenAdded) {
  TempDir dir;
  const std::string path = dir.file("x.gguf");
  GgufWriter w(path);
  w.add_uint32("k", 1);
  w.add_tensor("t", GgmlType::F32, {1}, pattern_bytes(4, 0));
  auto expect_err = [&](const std::function<void()>& fn, std::initializer_list<std::string_view> frags) {
    auto msg = error_message(fn);
    ASSERT_TRUE(msg.has_value()) << "no error for " << *frags.begin();
    EXPECT_NE(msg->find(path), std::string::npos) << *msg;
    for (auto fr : frags) EXPECT_NE(msg->find(fr), std::string::npos) << "'" << fr << "' not in: " << *msg;
  };
  expect_err([&] { GgufWriter bad(path, GgufWriterOptions{.version = 1}); }, {"version 1"});
  expect_err([&] { w.add_string("k", "again"); }, {"'k'", "twice"});
  expect_err([&] { w.add_uint32("", 1); }, {"empty"});
  expect_err([&] { w.add_uint32("general.alignment", 0); }, {"general.alignment", "0"});
  expect_err([&] { w.add_uint32("general.alignment", 48); }, {"general.alignment", "48"});
  expect_err([&] { w.add_int32("general.alignment", -32); }, {"general.alignment", "-32"});
  expect_err([&] { w.add_string("general.alignment", "32"); }, {"general.alignment", "integer"});
  expect_err([&] { w.add_value("v", value(GgufValueType::UINT8, uint64_t(256))); }, {"'v'", "256", "uint8"});
  expect_err([&] { w.add_value("v", value(GgufValueType::INT8, int64_t(-129))); }, {"'v'", "-129"});
  expect_err([&] { w.add_value("v", value(GgufValueType::UINT32, int64_t(-1))); }, {"'v'", "-1"});
  expect_err([&] { w.add_value("v", value(GgufValueType::STRING, uint64_t(1))); }, {"'v'", "string"});
  expect_err([&] { w.add_value("v", value(GgufValueType::FLOAT32, std::string("x"))); }, {"'v'", "float32"});
  expect_err([&] { w.add_value("v", value(static_cast<GgufValueType>(13), uint64_t(1))); }, {"'v'", "13"});
  expect_err([&] { w.add_array("v", GgufValueType::INT32, {value(GgufValueType::UINT8, uint64_t(1))}); },
             {"'v'", "item 0", "uint8"});
  {
    GgufValue deep = value(GgufValueType::INT32, int64_t(1));
    for (int i = 0; i < 6; ++i) {
      GgufArray a{deep.type, {deep}};
      deep = value(GgufValueType::ARRAY, a);
    }
    expect_err([&] { w.add_value("v", deep); }, {"'v'", "nests"});
  }
  EXPECT_FALSE(w.has("v"));

  expect_err([&] { w.add_tensor("t", GgmlType::F32, {1}, pattern_bytes(4, 0)); }, {"'t'", "twice"});
  expect_err([&] { w.add_tensor("", GgmlType::F32, {1}, pattern_bytes(4, 0)); }, {"empty"});
  expect_err([&] { w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, pattern_bytes(4, 0)); }, {"64 bytes"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {}, pattern_bytes(4, 0)); }, {"'u'", "0 dimensions"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {1, 1, 1, 1, 1}, pattern_bytes(4, 0)); }, {"'u'", "5 dim"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {2, 0}, pattern_bytes(4, 0)); }, {"'u'", "dimension 1 is 0"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {uint64_t(1) << 41}, [](GgufSink&) {}); }, {"'u'", "dimension 0"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {1ull << 40, 1ull << 40}, [](GgufSink&) {}); }, {"overflows"});
  expect_err([&] { w.add_tensor("u", GgmlType::Q4_0, {31, 2}, [](GgufSink&) {}); }, {"'u'", "row length 31", "Q4_0"});
  expect_err([&] { w.add_tensor("u", static_cast<GgmlType>(9999), {32}, [](GgufSink&) {}); }, {"'u'", "9999"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {2}, pattern_bytes(7, 0)); }, {"'u'", "7 bytes", "needs 8"});
  expect_err([&] { w.add_tensor("u", GgmlType::F32, {2}, GgufTensorSource{}); }, {"'u'", "no data source"});
  EXPECT_EQ(w.tensor_count(), 1u);
  // The writer still works after rejected additions.
  w.write();
  GgufFile f(path);
  EXPECT_EQ(f.metadata().size(), 1u);
  EXPECT_EQ(f.tensors().size(), 1u);
}

TEST(GgufWriter, CopyMetadataAndErase) {
  TempDir dir;
  const std::string src_path = dir.file("src.gguf");
  write_small_gguf(src_path);
  GgufFile src(src_path);
  const std::string path = dir.file("copy.gguf");
  GgufWriter w(path);
  w.add_string("general.architecture", "other");
  EXPECT_EQ(w.copy_metadata(src, [](const std::string& k) { return k.rfind("tokenizer.", 0) == 0; }), 3u);
  auto msg = error_message([&] { w.copy_metadata(src); });  // general.architecture clashes
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("'general.architecture'"), std::string::npos) << *msg;
  EXPECT_TRUE(w.erase("general.architecture"));
  EXPECT_FALSE(w.erase("general.architecture"));
  EXPECT_TRUE(w.has("tokenizer.ggml.tokens"));
  w.add_uint32("after", 1);
  w.write();
  GgufFile f(path);
  ASSERT_EQ(f.metadata().size(), 4u);
  EXPECT_EQ(f.metadata()[0].first, "tokenizer.ggml.tokens");
  EXPECT_EQ(f.metadata()[3].first, "after");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), src.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(f.find("tokenizer.ggml.token_type")->type, GgufValueType::ARRAY);
  EXPECT_EQ(std::get<GgufArray>(f.find("tokenizer.ggml.token_type")->v).elem_type, GgufValueType::INT32);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token", false));

  // Copying a whole real vocabulary reproduces every key and value.
  const std::string vocab = test::shared_dir() + "/tokenizers/ggml-vocab-llama-spm.gguf";
  if (!std::filesystem::exists(vocab)) return;
  GgufFile v(vocab);
  GgufWriter w2(dir.file("vocab.gguf"));
  EXPECT_EQ(w2.copy_metadata(v), v.metadata().size());
  w2.write();
  GgufFile v2(dir.file("vocab.gguf"));
  ASSERT_EQ(v2.metadata().size(), v.metadata().size());
  for (size_t i = 0; i < v.metadata().size(); ++i) {
    EXPECT_EQ(v2.metadata()[i].first, v.metadata()[i].first);
    EXPECT_EQ(v2.metadata()[i].second.type, v.metadata()[i].second.type);
    EXPECT_EQ(gguf_value_to_string(v2.metadata()[i].second, 1u << 20), gguf_value_to_string(v.metadata()[i].second, 1u << 20));
  }
}

// ================================================================================================================
// ggml reference quantizers

std::vector<float> golden_input() {  // exact in fp32: three blocks (mixed, all zero, evenly spaced)
  std::vector<float> x;
  for (int j = 0; j < 64; ++j) x.push_back(static_cast<float>(((j * 37) % 101) - 50) / 16.0f * static_cast<float>(1 + j % 3));
  for (int j = 0; j < 32; ++j) x.push_back(0.0f);
  for (int j = 0; j < 32; ++j) x.push_back((static_cast<float>(j) - 15.5f) / 8.0f);
  return x;
}

std::string hex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) s += {d[c >> 4], d[c & 15]};
  return s;
}

TEST(GgmlQuants, MatchGgufPyReferenceBytes) {
  // Expected bytes from gguf-py's gguf.quants.quantize (a numpy port of ggml's quantize_row_*_ref) for the input
  // above — a reference we did not write.
  const auto x = golden_input();
  EXPECT_EQ(hex(quantize_ggml(GgmlType::Q8_0, x.data(), 128)),
            "712cd3e941dcfb5ce50d77ee1f81f7319c0043b70955d212b1ed1bc30824d5232de7892c3ddcf957e50b72ed1c81f62e9bff40b6"
            "0851d011b1eb1ac20522d4202be63adb0000000000000000000000000000000000000000000000000000000000000000000"
            "0d0238189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f");
  EXPECT_EQ(hex(quantize_ggml(GgmlType::Q4_0, x.data(), 128)),
            "683cc5379cd6589e3679af479aa057abb268803c9cd6589e3679af478aa057abb268cc63008088888888888888888888888888"
            "888888c033809191a2a2b3b3c4c4d5d5e6e6f7f7f8");
  EXPECT_EQ(hex(quantize_ggml(GgmlType::Q4_1, x.data(), 128)),
            "8d3c68c8c5368cd6579d36799f478aa057aba2688d3c80c88cd6579d3679af478aa057abb268cc630000000000000000000000"
            "0000000000000000002234c0bf80809191a2a2b3b3c4c4d5d5e6e6f7f7");
}

TEST(GgmlQuants, ErrorBoundsOnRandomData) {
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 32 * 17;
    const float scale = std::pow(10.0f, static_cast<float>(trial % 7 - 3));
    auto x = test::random_floats(static_cast<size_t>(n), 1000 + trial, -scale, scale);
    if (trial % 5 == 0) x[3] = 8 * scale;  // an outlier
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1}) {
      SCOPED_TRACE(ggml_type_name(t));
      const auto q = quantize_ggml(t, x.data(), n);
      ASSERT_EQ(q.size(), ggml_nbytes(t, n));
      std::vector<float> y(static_cast<size_t>(n));
      dequantize_ggml(t, q.data(), y.data(), n);
      for (int64_t b = 0; b < n / 32; ++b) {
        float lo = x[b * 32], hi = x[b * 32], amax = 0;
        for (int j = 0; j < 32; ++j) {
          lo = std::min(lo, x[b * 32 + j]);
          hi = std::max(hi, x[b * 32 + j]);
          amax = std::max(amax, std::fabs(x[b * 32 + j]));
        }
        // Half a step (a whole one for Q4_0's clamped far side), plus the error of storing the scale (and min) in
        // fp16 — relative 2^-11, or absolute 2^-25 among the fp16 subnormals — times the largest quant.
        const float step = t == GgmlType::Q8_0 ? amax / 127 : t == GgmlType::Q4_0 ? amax / 8 : (hi - lo) / 15;
        const float qmax = t == GgmlType::Q8_0 ? 127 : t == GgmlType::Q4_0 ? 8 : 15;
        const float f16_err_d = std::max(step * 0x1p-11f, 0x1p-25f);
        const float f16_err_m = t == GgmlType::Q4_1 ? std::max(std::fabs(lo) * 0x1p-11f, 0x1p-25f) : 0.0f;
        const float bound = (t == GgmlType::Q4_0 ? 1.0f : 0.5f) * step + qmax * f16_err_d + f16_err_m + amax * 1e-6f;
        for (int j = 0; j < 32; ++j) ASSERT_LE(std::fabs(y[b * 32 + j] - x[b * 32 + j]), bound) << b << " " << j;
      }
    }
  }
}

TEST(GgmlQuants, Fp16AndBf16) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(0.1f), 0x2e66);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // halfway to 65536 rounds to even: infinity
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);     // halfway to it: to even (zero)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 units: to even (2)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // subnormal rounding up into the normals
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie: to even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie: to even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::nanf("")))));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(h & 0x7c00u, 0x7c00u);
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());

  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
    }
  }
}

TEST(GgmlQuants, Errors) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> y(64 * 4);
  auto msg = error_message([&] { quantize_row_q4_0(x.data(), y.data(), 33); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("33"), std::string::npos);
  msg = error_message([&] { quantize_ggml(GgmlType::Q5_K, x.data(), y.data(), 64); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("Q5_K"), std::string::npos);
  msg = error_message([&] { ggml_nbytes(GgmlType::Q8_0, 40); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("Q8_0"), std::string::npos);
  EXPECT_EQ(ggml_nbytes(GgmlType::Q4_1, 64), 40u);
  EXPECT_EQ(ggml_nbytes(GgmlType::BF16, 3), 6u);
}

// ================================================================================================================
// Tiny random Llama models (tests/test_util.h)

TEST(TinyLlama, EveryWeightTypeTiedAndUntied) {
  TempDir dir;
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1}) {
    for (bool tied : {true, false}) {
      SCOPED_TRACE(testing::Message() << ggml_type_name(type) << (tied ? " tied" : " untied"));
      test::TinyLlamaConfig cfg;
      cfg.weight_type = type;
      cfg.tied_output = tied;
      cfg.n_layers = 2;
      cfg.dim = 64;
      cfg.n_heads = 4;
      cfg.n_kv_heads = 2;
      cfg.ffn = 96;
      const std::string path = dir.file("tiny.gguf");
      const auto info = test::write_tiny_llama(path, cfg);
      GgufFile f(path);
      EXPECT_EQ(info.file_bytes, f.file_size());
      EXPECT_EQ(f.get_string("general.architecture"), "llama");
      EXPECT_EQ(f.get_uint("llama.block_count"), 2u);
      EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
      EXPECT_EQ(f.get_uint("llama.feed_forward_length"), 96u);
      EXPECT_EQ(f.get_uint("llama.attention.head_count"), 4u);
      EXPECT_EQ(f.get_uint("llama.attention.head_count_kv"), 2u);
      EXPECT_EQ(f.get_uint("llama.rope.dimension_count"), 16u);
      EXPECT_EQ(f.get_uint("llama.context_length"), 256u);
      EXPECT_EQ(f.find("llama.rope.freq_base")->type, GgufValueType::FLOAT32);
      EXPECT_DOUBLE_EQ(f.get_float("llama.rope.freq_base"), 10000.0);
      EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
      EXPECT_EQ(f.get_uint("llama.vocab_size"), info.vocab_size);
      EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), info.vocab_size);
      EXPECT_EQ(f.tensors().size(), 2u + 9 * 2 + (tied ? 0 : 1));
      EXPECT_EQ(f.tensors().size(), info.n_tensors);
      EXPECT_EQ(f.find_tensor("output.weight") == nullptr, tied);
      EXPECT_EQ(f.tensor("token_embd.weight").ne, (std::vector<uint64_t>{64, info.vocab_size}));
      EXPECT_EQ(f.tensor("blk.1.attn_q.weight").ne, (std::vector<uint64_t>{64, 64}));
      EXPECT_EQ(f.tensor("blk.1.attn_k.weight").ne, (std::vector<uint64_t>{64, 32}));
      EXPECT_EQ(f.tensor("blk.1.attn_v.weight").ne, (std::vector<uint64_t>{64, 32}));
      EXPECT_EQ(f.tensor("blk.1.attn_output.weight").ne, (std::vector<uint64_t>{64, 64}));
      EXPECT_EQ(f.tensor("blk.1.ffn_gate.weight").ne, (std::vector<uint64_t>{64, 96}));
      EXPECT_EQ(f.tensor("blk.1.ffn_up.weight").ne, (std::vector<uint64_t>{64, 96}));
      EXPECT_EQ(f.tensor("blk.1.ffn_down.weight").ne, (std::vector<uint64_t>{96, 64}));
      EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, GgmlType::F32);
      EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, type);
      // Each tensor dequantizes to the generator's floats within the format's precision.
      for (const auto& t : f.tensors()) {
        const auto want = test::tiny_llama_values(cfg, t.name);
        ASSERT_EQ(want.size(), t.n_elements) << t.name;
        std::vector<float> got(t.n_elements);
        dequantize_ggml(t.type, t.data, got.data(), static_cast<int64_t>(t.n_elements));
        float amax = 0, err = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          amax = std::max(amax, std::fabs(want[i]));
          err = std::max(err, std::fabs(got[i] - want[i]));
        }
        const float tol = t.type == GgmlType::F32    ? 0.0f
                          : t.type == GgmlType::F16  ? amax / 1024
                          : t.type == GgmlType::BF16 ? amax / 128
                          : t.type == GgmlType::Q8_0 ? amax / 127
                                                     : amax / 7;
        EXPECT_LE(err, tol) << t.name;
      }
    }
  }
}

TEST(TinyLlama, ByteLevelVocabularies) {
  TempDir dir;
  test::TinyLlamaConfig cfg;
  const auto info = test::write_tiny_llama(dir.file("gpt2.gguf"), cfg);
  GgufFile f(dir.file("gpt2.gguf"));
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  ASSERT_EQ(tokens.size(), info.vocab_size);
  EXPECT_EQ(tokens[' '], "Ġ");
  EXPECT_EQ(tokens['\n'], "Ċ");
  EXPECT_EQ(tokens['A'], "A");
  EXPECT_EQ(tokens[0], "Ā");
  EXPECT_EQ(tokens[0xad], "Ń");
  EXPECT_EQ(tokens[0xff], "ÿ");
  std::set<std::string> unique(tokens.begin(), tokens.end());
  EXPECT_EQ(unique.size(), tokens.size()) << "tokens must be distinct";
  EXPECT_EQ(tokens.back(), "<|endoftext|>");
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id"), tokens.size() - 1);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id"), tokens.size() - 1);
  const auto types = f.get_int_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.back(), 3);
  EXPECT_EQ(types[65], 1);
  // every merge joins two tokens into a token
  for (const auto& m : f.get_string_array("tokenizer.ggml.merges")) {
    const auto sp = m.find(' ');
    ASSERT_NE(sp, std::string::npos);
    EXPECT_TRUE(unique.count(m.substr(0, sp))) << m;
    EXPECT_TRUE(unique.count(m.substr(sp + 1))) << m;
    EXPECT_TRUE(unique.count(m.substr(0, sp) + m.substr(sp + 1))) << m;
  }

  cfg.pre = "smollm";
  test::write_tiny_llama(dir.file("smol.gguf"), cfg);
  GgufFile s(dir.file("smol.gguf"));
  tokens = s.get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(s.get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(tokens[3 + ' '], "Ġ");
  EXPECT_EQ(s.get_uint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(s.get_uint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_FALSE(s.get_bool("tokenizer.ggml.add_bos_token", true));
  EXPECT_NE(s.get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);

  cfg.pre = "llama3";
  auto msg = error_message([&] { test::write_tiny_llama(dir.file("x.gguf"), cfg); });
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("llama3"), std::string::npos);
}

TEST(TinyLlama, VocabularyCopiedFromFile) {
  const std::string vocab = test::shared_dir() + "/tokenizers/ggml-vocab-gpt-2.gguf";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << vocab << " not present";
  TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.vocab_gguf = vocab;
  cfg.dim = 32;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 1;
  cfg.ffn = 64;
  cfg.n_layers = 1;
  cfg.weight_type = GgmlType::Q4_0;
  const auto info = test::write_tiny_llama(dir.file("v.gguf"), cfg);
  EXPECT_EQ(info.vocab_size, 50257u);
  GgufFile f(dir.file("v.gguf"));
  GgufFile v(vocab);
  EXPECT_EQ(f.get_uint("llama.vocab_size"), 50257u);
  EXPECT_EQ(f.tensor("token_embd.weight").ne, (std::vector<uint64_t>{32, 50257}));
  for (const auto& [key, value] : v.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    ASSERT_TRUE(f.has(key)) << key;
    EXPECT_EQ(gguf_value_to_string(*f.find(key), 1u << 20), gguf_value_to_string(value, 1u << 20)) << key;
  }
  EXPECT_FALSE(f.has("gpt2.block_count"));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
}

TEST(TinyLlama, DeterministicAndConfigurable) {
  TempDir dir;
  test::TinyLlamaConfig cfg;
  cfg.weight_type = GgmlType::Q8_0;
  test::write_tiny_llama(dir.file("a.gguf"), cfg);
  test::write_tiny_llama(dir.file("b.gguf"), cfg);
  EXPECT_EQ(test::read_file_bytes(dir.file("a.gguf")), test::read_file_bytes(dir.file("b.gguf")));
  cfg.seed = 43;
  test::write_tiny_llama(dir.file("c.gguf"), cfg);
  EXPECT_NE(test::read_file_bytes(dir.file("a.gguf")), test::read_file_bytes(dir.file("c.gguf")));

  cfg.gguf_version = 2;
  cfg.alignment = 64;
  cfg.embd_type = GgmlType::F16;
  cfg.tied_output = false;
  cfg.output_type = GgmlType::Q4_1;
  cfg.n_layers = 3;
  cfg.context_length = 128;
  cfg.rope_freq_base = 500000.0f;
  test::write_tiny_llama(dir.file("d.gguf"), cfg);
  GgufFile d(dir.file("d.gguf"));
  EXPECT_EQ(d.version(), 2u);
  EXPECT_EQ(d.alignment(), 64u);
  EXPECT_EQ(d.tensor("token_embd.weight").type, GgmlType::F16);
  EXPECT_EQ(d.tensor("output.weight").type, GgmlType::Q4_1);
  EXPECT_EQ(d.tensor("blk.2.ffn_up.weight").type, GgmlType::Q8_0);
  EXPECT_EQ(d.get_uint("llama.block_count"), 3u);
  EXPECT_EQ(d.get_uint("llama.context_length"), 128u);
  EXPECT_EQ(d.get_float("llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(d.get_uint("general.file_type"), 7u);
  EXPECT_EQ(d.get_uint("general.quantization_version"), 2u);
  for (const auto& t : d.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;

  auto bad = [&](auto mutate, std::string_view frag) {
    test::TinyLlamaConfig c;
    mutate(c);
    auto msg = error_message([&] { test::write_tiny_llama(dir.file("bad.gguf"), c); });
    ASSERT_TRUE(msg.has_value()) << frag;
    EXPECT_NE(msg->find(frag), std::string::npos) << *msg;
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.gguf")));
  };
  bad([](test::TinyLlamaConfig& c) { c.n_heads = 3; }, "n_heads");
  bad([](test::TinyLlamaConfig& c) { c.n_kv_heads = 3; }, "n_kv_heads");
  bad([](test::TinyLlamaConfig& c) { c.weight_type = GgmlType::Q4_0; c.ffn = 40; }, "row length 40");
  bad([](test::TinyLlamaConfig& c) { c.weight_type = GgmlType::Q5_K; }, "Q5_K");
}

}  // namespace
}  // namespace lowbit
