// The .lbt bundle: round trips, the documented byte layout, and a bad-input matrix (every truncation, every flipped
// byte, crafted headers with valid checksums that reach each structural check), plus writer failures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lowbit/bundle.h"
#include "lowbit/error.h"
#include "test_util.h"

namespace lowbit {
namespace {

using nlohmann::json;
using test::error_message;
using test::read_file_bytes;
using test::TempDir;
using test::write_file_bytes;

std::vector<uint8_t> pattern_bytes(size_t n, uint64_t seed) {
  test::Rng rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng.next() >> 56);
  return v;
}

uint64_t u64le(const std::vector<uint8_t>& f, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | f[at + i];
  return v;
}
uint32_t u32le(const std::vector<uint8_t>& f, size_t at) {
  return uint32_t(f[at]) | uint32_t(f[at + 1]) << 8 | uint32_t(f[at + 2]) << 16 | uint32_t(f[at + 3]) << 24;
}
void put_u32le(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64le(std::vector<uint8_t>& f, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// write_file_bytes over a fresh inode: truncating an existing file and rewriting it makes ext4 flush it to disk on
// close (auto_da_alloc), which would make the byte-by-byte loops below slow for no benefit.
void replace_file(const std::string& path, std::span<const uint8_t> bytes) {
  std::filesystem::remove(path);
  write_file_bytes(path, bytes);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Opens `path`; expects a lowbit::Error whose message names the file and contains every part.
void expect_open_error(const std::string& path, const std::vector<std::string>& parts, bool verify = true) {
  auto msg = error_message([&] { BundleFile f(path, verify); });
  ASSERT_TRUE(msg.has_value()) << "opened without error; expected: " << parts.front();
  EXPECT_TRUE(contains(*msg, path)) << *msg;
  EXPECT_EQ(msg->find('\n'), std::string::npos) << *msg;
  for (const auto& p : parts) EXPECT_TRUE(contains(*msg, p)) << "expected '" << p << "' in: " << *msg;
}

// A small bundle with every kind of blob, used by the exhaustive truncation and corruption tests.
struct SmallBundle {
  std::string path;
  json meta = {{"model", "tiny"}, {"dims", {3, 5}}};
  std::vector<uint8_t> a = pattern_bytes(10, 1);
  std::vector<uint8_t> s = pattern_bytes(70, 2);
  std::vector<uint8_t> c = {0x5a};
  std::vector<uint8_t> bytes;  // the file as written

  explicit SmallBundle(const TempDir& dir) : path(dir.file("small.lbt")) {
    BundleWriter w(path);
    w.set_header(meta);
    w.add_blob("a", a);
    w.add_blob("empty", std::span<const uint8_t>());
    w.add_blob_stream("s", s.size(), [this](BlobSink& sink) {
      sink.write(s.data(), 3);
      sink.write(std::span<const uint8_t>(s).subspan(3));
    });
    w.add_blob("c", c);
    w.write();
    bytes = read_file_bytes(path);
  }
  uint64_t header_len() const { return u64le(bytes, 16); }
  uint64_t data_start() const { return (32 + header_len() + 63) / 64 * 64; }
};

// Builds a bundle by hand from JSON text: fixed header with a valid header checksum, the text, zeros up to
// `file_size`. Lets a test reach the checks behind the checksum with any header it likes.
// file_size 0: just the header, padded to 64.
std::vector<uint8_t> craft(const std::string& json_text, uint64_t file_size = 0, uint32_t version = 1,
                           uint32_t flags = 0) {
  if (file_size == 0) file_size = (32 + json_text.size() + 63) / 64 * 64;
  std::vector<uint8_t> f(std::max<uint64_t>(file_size, 32 + json_text.size()), 0);
  std::memcpy(f.data(), kBundleMagic, 8);
  put_u32le(f, 8, version);
  put_u32le(f, 12, flags);
  put_u64le(f, 16, json_text.size());
  put_u64le(f, 24, bundle_xxh64({reinterpret_cast<const uint8_t*>(json_text.data()), json_text.size()}));
  std::memcpy(f.data() + 32, json_text.data(), json_text.size());
  f.resize(file_size);
  return f;
}

std::string zeros_sum(size_t n) {
  std::vector<uint8_t> z(n, 0);
  return fmt::format("{:016x}", bundle_xxh64(z));
}

json blob_entry(const std::string& name, uint64_t offset, uint64_t bytes, const std::string& sum = "") {
  return {{"name", name}, {"offset", offset}, {"bytes", bytes}, {"xxh64", sum.empty() ? zeros_sum(bytes) : sum}};
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips and layout

TEST(Bundle, Xxh64MatchesPublishedVectors) {
  auto h = [](std::string_view s) { return bundle_xxh64({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); };
  EXPECT_EQ(h(""), 0xef46db3751d8e999ull);
  EXPECT_EQ(h("a"), 0xd24ec4f1a98c6e5bull);
  EXPECT_EQ(h("abc"), 0x44bc2cf5ad770999ull);
  EXPECT_EQ(h("foo"), 0x33bf00a859c4ba3full);
}

TEST(Bundle, RoundTripHeaderAndBlobsInPlace) {
  TempDir dir;
  const std::string path = dir.file("m.lbt");
  const json meta = {{"arch", "llama"},
                     {"dim", 576},
                     {"big", 18446744073709551615ull},
                     {"neg", -3},
                     {"eps", 1e-5},
                     {"nested", {{"list", {1, "two", nullptr, true}}, {"unicode", "héllo ☃ 日本"}}}};
  const auto a = pattern_bytes(1000, 1);
  const auto b = pattern_bytes(64, 2);
  const auto c = pattern_bytes(1, 3);
  const auto streamed = pattern_bytes(200003, 4);
  auto owned = pattern_bytes(129, 5);
  const auto owned_copy = owned;

  BundleWriter w(path);
  w.set_header(meta);
  w.add_blob("blk.0.wq.codes", a);
  w.add_blob("empty", std::span<const uint8_t>());
  w.add_blob_stream("streamed", streamed.size(), [&](BlobSink& sink) {
    size_t at = 0, step = 1;
    while (at < streamed.size()) {  // chunks of growing odd sizes
      const size_t k = std::min(step, streamed.size() - at);
      sink.write(streamed.data() + at, k);
      at += k;
      step = step * 3 + 1;
    }
  });
  w.add_blob("b", b);
  w.add_blob("owned", std::move(owned));
  w.add_blob("c \"quoted\" name", c);
  w.add_blob("empty at end", std::span<const uint8_t>());
  EXPECT_EQ(w.blob_count(), 7u);
  const uint64_t size = w.write();
  EXPECT_EQ(size, std::filesystem::file_size(path));
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"m.lbt"});  // no temporary left behind

  BundleFile f(path);
  EXPECT_EQ(f.version(), 1u);
  EXPECT_EQ(f.file_size(), size);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.header(), meta);
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> expected = {
      {"blk.0.wq.codes", a}, {"empty", {}}, {"streamed", streamed},   {"b", b},
      {"owned", owned_copy}, {"c \"quoted\" name", c}, {"empty at end", {}}};
  ASSERT_EQ(f.blobs().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [name, data] = expected[i];
    SCOPED_TRACE(name);
    EXPECT_EQ(f.blobs()[i].name, name);
    EXPECT_TRUE(f.has_blob(name));
    const std::span<const uint8_t> got = f.blob(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.data()) % 64, 0u);
    EXPECT_EQ(f.blobs()[i].offset % 64, 0u);
    EXPECT_EQ(f.blobs()[i].bytes, data.size());
    EXPECT_EQ(f.blobs()[i].xxh64, bundle_xxh64(data));
    EXPECT_EQ(f.blob_info(name).offset, f.blobs()[i].offset);
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin()));
  }
  EXPECT_FALSE(f.has_blob("nope"));

  // Without checksum verification the same data is served.
  BundleFile g(path, /*verify_checksums=*/false);
  EXPECT_EQ(g.header(), meta);
  EXPECT_TRUE(std::ranges::equal(g.blob("streamed"), streamed));
}

TEST(Bundle, LayoutMatchesTheDocumentation) {
  TempDir dir;
  SmallBundle sb(dir);
  const auto& f = sb.bytes;
  const uint8_t magic[8] = {0x89, 'L', 'B', 'T', '\r', '\n', 0x1a, '\n'};
  ASSERT_GE(f.size(), 64u);
  EXPECT_EQ(std::memcmp(f.data(), magic, 8), 0);
  EXPECT_NE(std::memcmp(f.data(), "GGUF", 4), 0);
  EXPECT_EQ(u32le(f, 8), 1u);   // version
  EXPECT_EQ(u32le(f, 12), 0u);  // flags
  const uint64_t len = u64le(f, 16);
  ASSERT_LE(32 + len, f.size());
  const std::span<const uint8_t> text(f.data() + 32, len);
  EXPECT_EQ(u64le(f, 24), bundle_xxh64(text));
  const json h = json::parse(text.begin(), text.end());
  EXPECT_EQ(h.dump(), std::string(text.begin(), text.end()));  // compact nlohmann dump
  ASSERT_TRUE(h.contains("blobs"));
  EXPECT_EQ(h["model"], "tiny");

  // Blobs in insertion order, each at the next multiple of 64 after the previous one's end (the first right after
  // the padded header); every gap is zeros; the file ends where the last blob ends.
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> blobs = {
      {"a", sb.a}, {"empty", {}}, {"s", sb.s}, {"c", sb.c}};
  ASSERT_EQ(h["blobs"].size(), blobs.size());
  uint64_t pos = 32 + len;
  for (size_t i = 0; i < blobs.size(); ++i) {
    const json& e = h["blobs"][i];
    EXPECT_EQ(e.size(), 4u) << e.dump();
    EXPECT_EQ(e["name"], blobs[i].first);
    const uint64_t off = e["offset"].get<uint64_t>();
    EXPECT_EQ(off, (pos + 63) / 64 * 64) << blobs[i].first;
    for (uint64_t k = pos; k < off; ++k) EXPECT_EQ(f[k], 0) << "padding byte " << k;
    EXPECT_EQ(e["bytes"].get<uint64_t>(), blobs[i].second.size());
    EXPECT_EQ(e["xxh64"], fmt::format("{:016x}", bundle_xxh64(blobs[i].second)));
    EXPECT_TRUE(std::equal(blobs[i].second.begin(), blobs[i].second.end(), f.begin() + off));
    pos = off + blobs[i].second.size();
  }
  EXPECT_EQ(pos, f.size());
}

TEST(Bundle, EmptyBundleIsTheHeaderPaddedTo64) {
  TempDir dir;
  const std::string path = dir.file("e.lbt");
  BundleWriter w(path);
  EXPECT_EQ(w.write(), 64u);  // 32 + len('{"blobs":[]}') = 44, padded
  const auto bytes = read_file_bytes(path);
  EXPECT_EQ(std::string(bytes.begin() + 32, bytes.begin() + 44), R"({"blobs":[]})");
  BundleFile f(path);
  EXPECT_EQ(f.header(), json::object());
  EXPECT_TRUE(f.blobs().empty());
}

TEST(Bundle, HeaderLengthNearAlignmentBoundariesSettles) {
  // Header text lengths around every residue mod 64 (and offsets whose digit count changes) must all produce a
  // valid file: the writer reserves exactly the header it later writes.
  TempDir dir;
  const auto data = pattern_bytes(100, 9);
  for (size_t pad = 0; pad < 200; ++pad) {
    SCOPED_TRACE(pad);
    const std::string path = dir.file(fmt::format("p{}.lbt", pad));  // new names: no rename over a file
    BundleWriter w(path);
    w.set_header({{"pad", std::string(pad, 'x')}});
    w.add_blob("d", data);
    w.add_blob("e", std::span<const uint8_t>());
    const uint64_t size = w.write();
    BundleFile f(path);
    EXPECT_EQ(f.file_size(), size);
    EXPECT_TRUE(std::ranges::equal(f.blob("d"), data));
  }
}

TEST(Bundle, WriteIsDeterministicAndRepeatable) {
  TempDir dir;
  const std::string path = dir.file("r.lbt");
  int runs = 0;
  const auto data = pattern_bytes(5000, 7);
  BundleWriter w(path);
  w.set_header({{"k", 1}});
  w.add_blob_stream("s", data.size(), [&](BlobSink& s) {
    ++runs;
    s.write(data);
  });
  w.write();
  const auto first = read_file_bytes(path);
  w.write();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(read_file_bytes(path), first);
}

TEST(Bundle, BlobsLargerThanTheWriteBuffer) {
  TempDir dir;
  const std::string path = dir.file("big.lbt");
  const auto big = pattern_bytes((size_t(3) << 20) + 5, 11);  // > the writer's 1 MiB buffer
  const auto mid = pattern_bytes((size_t(1) << 20) - 3, 12);
  BundleWriter w(path);
  w.add_blob("borrowed", big);
  w.add_blob_stream("streamed", big.size(), [&](BlobSink& s) {
    s.write(big.data(), 17);
    s.write(big.data() + 17, (size_t(2) << 20));  // one huge chunk
    s.write(big.data() + 17 + (size_t(2) << 20), big.size() - 17 - (size_t(2) << 20));
  });
  w.add_blob("mid", mid);
  w.write();
  BundleFile f(path);
  EXPECT_TRUE(std::ranges::equal(f.blob("borrowed"), big));
  EXPECT_TRUE(std::ranges::equal(f.blob("streamed"), big));
  EXPECT_TRUE(std::ranges::equal(f.blob("mid"), mid));
}

TEST(Bundle, MissingBlobNamesFileAndBlob) {
  TempDir dir;
  SmallBundle sb(dir);
  BundleFile f(sb.path);
  for (auto fn : {+[](const BundleFile& b) { (void)b.blob("blk.9.wq"); },
                  +[](const BundleFile& b) { (void)b.blob_info("blk.9.wq"); }}) {
    auto msg = error_message([&] { fn(f); });
    ASSERT_TRUE(msg);
    EXPECT_TRUE(contains(*msg, sb.path)) << *msg;
    EXPECT_TRUE(contains(*msg, "'blk.9.wq'")) << *msg;
  }
}

TEST(Bundle, MovedFileKeepsItsMapping) {
  TempDir dir;
  SmallBundle sb(dir);
  BundleFile f(sb.path);
  const std::span<const uint8_t> s = f.blob("s");
  BundleFile g(std::move(f));
  EXPECT_EQ(g.blob("s").data(), s.data());
  EXPECT_TRUE(std::ranges::equal(s, sb.s));
  BundleFile h(sb.path, false);
  h = std::move(g);
  EXPECT_TRUE(std::ranges::equal(h.blob("s"), sb.s));
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation

TEST(BundleTruncation, AtEverySectionBoundary) {
  TempDir dir;
  SmallBundle sb(dir);
  const uint64_t len = sb.header_len(), size = sb.bytes.size();
  BundleFile ok(sb.path);
  std::vector<uint64_t> cuts = {1,  7,  8,  11, 12, 15, 16, 23, 24, 31, 32, 33, 32 + len / 2, 32 + len - 1, 32 + len,
                                sb.data_start() - 1, size - 1};
  for (const BlobInfo& b : ok.blobs()) {
    for (uint64_t d : {uint64_t(0), uint64_t(1), b.bytes / 2, b.bytes - 1}) {
      if (d < b.bytes || d == 0) cuts.push_back(b.offset + d);
    }
  }
  const std::string cut_path = dir.file("cut.lbt");
  for (uint64_t cut : cuts) {
    if (cut >= size) continue;
    SCOPED_TRACE(cut);
    replace_file(cut_path, std::span<const uint8_t>(sb.bytes).first(cut));
    if (cut < 32) {
      expect_open_error(cut_path, {"truncated lowbit bundle", "shorter than the 32-byte fixed header"});
    } else if (cut < 32 + len) {
      expect_open_error(cut_path, {"header length", "exceeds the file", "truncated?"});
    } else {
      expect_open_error(cut_path, {"extends past the end of the file", "truncated?"});
    }
  }
  replace_file(cut_path, {});
  expect_open_error(cut_path, {"not a lowbit bundle (empty file)"});
  // The last blob loses its final byte: the error names it.
  replace_file(cut_path, std::span<const uint8_t>(sb.bytes).first(size - 1));
  expect_open_error(cut_path, {"blob 'c'", "extends past the end"});
}

TEST(BundleTruncation, EveryPrefixIsACleanError) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string cut_path = dir.file("cut.lbt");
  for (size_t n = 0; n < sb.bytes.size(); ++n) {
    SCOPED_TRACE(n);
    replace_file(cut_path, std::span<const uint8_t>(sb.bytes).first(n));
    expect_open_error(cut_path, {cut_path}, /*verify=*/true);
    expect_open_error(cut_path, {cut_path}, /*verify=*/false);
  }
}

TEST(BundleTruncation, HeaderWithoutItsPadding) {
  // No blobs: the file must still extend to the padded end of the header.
  TempDir dir;
  const std::string path = dir.file("t.lbt");
  const std::string text = R"({"blobs":[]})";
  replace_file(path, craft(text, 32 + text.size()));
  expect_open_error(path, {"truncated lowbit bundle", "end at 64"});
}

// ---------------------------------------------------------------------------------------------------------------
// Corruption

// Flips bits of byte `at` of the small bundle and expects an error with `parts`.
void expect_flip_error(const SmallBundle& sb, const std::string& path, size_t at, uint8_t mask,
                       const std::vector<std::string>& parts) {
  auto bytes = sb.bytes;
  bytes[at] ^= mask;
  replace_file(path, bytes);
  SCOPED_TRACE(fmt::format("byte {} ^ 0x{:02x}", at, mask));
  expect_open_error(path, parts);
}

TEST(BundleCorruption, FixedHeaderFields) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("x.lbt");
  for (uint8_t mask : {0x01, 0x80, 0xff}) {
    for (size_t i = 0; i < 8; ++i) expect_flip_error(sb, p, i, mask, {"not a lowbit bundle (bad magic)"});
    // Version 1 with a bit flipped is 0 or a future version.
    for (size_t i = 8; i < 12; ++i) {
      const bool zero = i == 8 && mask == 0x01;
      expect_flip_error(sb, p, i, mask, {zero ? "bundle version 0 is invalid" : "is newer than this lowbit supports (1)"});
    }
    for (size_t i = 12; i < 16; ++i) expect_flip_error(sb, p, i, mask, {"bundle flags", "unknown"});
    for (size_t i = 16; i < 24; ++i) {
      auto bytes = sb.bytes;
      bytes[i] ^= mask;
      replace_file(p, bytes);
      auto msg = error_message([&] { BundleFile f(p); });
      ASSERT_TRUE(msg) << i;
      EXPECT_TRUE(contains(*msg, "exceeds the file") || contains(*msg, "header checksum mismatch")) << *msg;
    }
    for (size_t i = 24; i < 32; ++i) expect_flip_error(sb, p, i, mask, {"header checksum mismatch (corrupted file?)"});
  }
  // Version byte 8 ^ 0x01 turns 1 into 0.
  expect_flip_error(sb, p, 8, 0x01, {"bundle version 0 is invalid"});
}

TEST(BundleCorruption, EveryByteOfTheHeaderJson) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("x.lbt");
  for (size_t i = 32; i < 32 + sb.header_len(); ++i) {
    expect_flip_error(sb, p, i, 0x01, {"header checksum mismatch"});
    expect_flip_error(sb, p, i, 0x20, {"header checksum mismatch"});
  }
}

TEST(BundleCorruption, EveryByteOfEveryBlobNamesTheBlob) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("x.lbt");
  BundleFile ok(sb.path);
  for (const BlobInfo& b : ok.blobs()) {
    for (uint64_t k = 0; k < b.bytes; ++k) {
      expect_flip_error(sb, p, b.offset + k, 0x04,
                        {fmt::format("blob '{}' checksum mismatch (corrupted file?)", b.name)});
      // Unverified, the corruption is not noticed (the caller chose speed).
      BundleFile unverified(p, /*verify_checksums=*/false);
      EXPECT_EQ(unverified.blob(b.name)[k], sb.bytes[b.offset + k] ^ 0x04);
    }
  }
}

TEST(BundleCorruption, EveryByteIsCheckedUnlessItIsPadding) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("x.lbt");
  BundleFile ok(sb.path);
  std::vector<bool> covered(sb.bytes.size(), false);
  for (uint64_t i = 0; i < 32 + sb.header_len(); ++i) covered[i] = true;
  for (const BlobInfo& b : ok.blobs())
    for (uint64_t k = 0; k < b.bytes; ++k) covered[b.offset + k] = true;
  size_t padding = 0;
  for (size_t i = 0; i < sb.bytes.size(); ++i) {
    auto bytes = sb.bytes;
    bytes[i] ^= 0x10;
    replace_file(p, bytes);
    auto msg = error_message([&] { BundleFile f(p); });
    if (covered[i]) {
      EXPECT_TRUE(msg.has_value()) << "flipping byte " << i << " went unnoticed";
    } else {
      ++padding;
      EXPECT_FALSE(msg.has_value()) << "padding byte " << i << ": " << msg.value_or("");
    }
  }
  EXPECT_GT(padding, 0u);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: other files, versions, lengths

TEST(BundleBadInput, OtherKindsOfFile) {
  TempDir dir;
  const std::string gguf = dir.file("tiny.gguf");
  test::write_tiny_llama(gguf);
  expect_open_error(gguf, {"not a lowbit bundle (bad magic)"});

  const std::string p = dir.file("x.lbt");
  replace_file(p, std::vector<uint8_t>{'G', 'G'});  // short and wrong: bad magic, not "truncated"
  expect_open_error(p, {"not a lowbit bundle (bad magic)"});
  replace_file(p, std::vector<uint8_t>(100, 0));
  expect_open_error(p, {"not a lowbit bundle (bad magic)"});

  expect_open_error(dir.file("missing.lbt"), {"cannot open"});
  expect_open_error(dir.path(), {"is a directory"});
}

TEST(BundleBadInput, Versions) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("v.lbt");
  for (uint32_t v : {2u, 7u, 0xffffffffu}) {
    auto bytes = sb.bytes;
    put_u32le(bytes, 8, v);
    replace_file(p, bytes);
    expect_open_error(p, {fmt::format("bundle version {} is newer than this lowbit supports (1)", v)});
  }
  auto bytes = sb.bytes;
  put_u32le(bytes, 8, 0);
  replace_file(p, bytes);
  expect_open_error(p, {"bundle version 0 is invalid"});
  // A future version is rejected before its header is even looked at (its layout may differ).
  const std::string text = "not json at all";
  replace_file(p, craft(text, 64, /*version=*/2));
  expect_open_error(p, {"bundle version 2 is newer"});
  replace_file(p, craft(R"({"blobs":[]})", 64, 1, /*flags=*/4));
  expect_open_error(p, {"bundle flags 0x00000004 are unknown"});
}

TEST(BundleBadInput, HugeHeaderLengths) {
  TempDir dir;
  SmallBundle sb(dir);
  const std::string p = dir.file("h.lbt");
  for (uint64_t len : {uint64_t(1) << 63, ~uint64_t(0), ~uint64_t(0) - 31, uint64_t(sb.bytes.size()) - 31,
                       uint64_t(1) << 32}) {
    SCOPED_TRACE(len);
    auto bytes = sb.bytes;
    put_u64le(bytes, 16, len);
    replace_file(p, bytes);
    expect_open_error(p, {fmt::format("header length {} exceeds the file ({} bytes", len, sb.bytes.size())});
  }
  // Exactly the rest of the file is in range; then the checksum disagrees.
  auto bytes = sb.bytes;
  put_u64le(bytes, 16, bytes.size() - 32);
  replace_file(p, bytes);
  expect_open_error(p, {"header checksum mismatch"});
  put_u64le(bytes, 16, 0);
  replace_file(p, bytes);
  expect_open_error(p, {"header checksum mismatch"});
  // An empty header with a matching checksum reaches the parser.
  replace_file(p, craft("", 64));
  expect_open_error(p, {"header JSON:", "parse error"});
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: crafted headers with valid checksums, reaching every structural check

TEST(BundleBadInput, CraftedHeaders) {
  TempDir dir;
  const std::string p = dir.file("c.lbt");
  // A valid base: one 1 KiB blob of zeros at 1024 in a 2 KiB file.
  auto base = [](json blobs) { return json{{"meta", 1}, {"blobs", std::move(blobs)}}; };
  replace_file(p, craft(base({blob_entry("x", 1024, 1024)}).dump(), 2048));
  {
    BundleFile f(p);
    EXPECT_EQ(f.header(), json({{"meta", 1}}));
    EXPECT_EQ(f.blob("x").size(), 1024u);
  }

  struct Case {
    std::string what;
    std::string text;
    uint64_t size;
    std::vector<std::string> parts;
  };
  const uint64_t max = ~uint64_t(0);
  const std::vector<Case> cases = {
      {"unaligned offset", base({blob_entry("x", 1056 - 8, 64)}).dump(), 2048,
       {"blob 'x' offset 1048 is not a multiple of 64"}},
      {"offset 0 (inside the header)", base({blob_entry("x", 0, 64)}).dump(), 2048,
       {"blob 'x' offset 0 is inside the header"}},
      {"offset 64 (inside the header)", base({blob_entry("x", 64, 64)}).dump(), 2048,
       {"blob 'x' offset 64 is inside the header"}},
      {"one byte past the end", base({blob_entry("x", 1024, 1025)}).dump(), 2048,
       {"blob 'x' (offset 1024, 1025 bytes) extends past the end of the file (2048 bytes"}},
      {"offset past the end", base({blob_entry("x", 4096, 0)}).dump(), 2048, {"blob 'x'", "extends past the end"}},
      {"offset + bytes overflows", base({blob_entry("x", max - 63, 128, "0000000000000000")}).dump(), 2048,
       {"blob 'x'", "extends past the end"}},
      {"bytes = 2^64-1", base({blob_entry("x", 1024, max, "0000000000000000")}).dump(), 2048,
       {"blob 'x'", "extends past the end"}},
      {"overlap", base({blob_entry("x", 1024, 512), blob_entry("y", 1472, 576)}).dump(), 2048,
       {"blobs 'x' and 'y' overlap"}},
      {"overlap, listed in reverse", base({blob_entry("y", 1472, 576), blob_entry("x", 1024, 512)}).dump(), 2048,
       {"blobs 'x' and 'y' overlap"}},
      {"empty blob inside another", base({blob_entry("x", 1024, 1024), blob_entry("e", 1536, 0)}).dump(), 2048,
       {"blobs 'x' and 'e' overlap"}},
      {"same range twice", base({blob_entry("x", 1024, 64), blob_entry("y", 1024, 64)}).dump(), 1088,
       {"overlap"}},
      {"duplicate names", base({blob_entry("x", 1024, 64), blob_entry("x", 1088, 64)}).dump(), 1152,
       {"blob 'x' appears twice in the header"}},
      {"trailing bytes", base({blob_entry("x", 1024, 1024)}).dump(), 2049,
       {"1 unexpected bytes after the end of the bundle (at 2048)"}},
      {"header not an object", "[1,2]", 0, {"header JSON is array, expected an object"}},
      {"no blobs key", R"({"a":1})", 0, {"header has no \"blobs\" array"}},
      {"blobs not an array", R"({"blobs":{}})", 0, {"header \"blobs\" is object, expected an array"}},
      {"entry not an object", R"({"blobs":[7]})", 0, {"header blobs[0] is number, expected an object"}},
      {"no name", R"({"blobs":[{"offset":64,"bytes":0,"xxh64":"ef46db3751d8e999"}]})", 0,
       {"header blobs[0] has no \"name\""}},
      {"name not a string", R"({"blobs":[{"name":3,"offset":128,"bytes":0,"xxh64":"ef46db3751d8e999"}]})", 0,
       {"header blobs[0].name is number, expected a string"}},
      {"empty name", base({blob_entry("", 1024, 0)}).dump(), 1024, {"header blobs[0].name is empty"}},
      {"control bytes in a name", base({blob_entry("a\nb", 1048, 0)}).dump(), 1088,
       {"blob 'a\\x0ab' offset 1048 is not a multiple of 64"}},
      {"no offset", R"({"blobs":[{"name":"x","bytes":0,"xxh64":"ef46db3751d8e999"}]})", 0,
       {"header blobs[0] has no \"offset\""}},
      {"negative offset", R"({"blobs":[{"name":"x","offset":-64,"bytes":0,"xxh64":"ef46db3751d8e999"}]})", 0,
       {"blob 'x': \"offset\" is negative, expected an unsigned integer"}},
      {"float offset", R"({"blobs":[{"name":"x","offset":128.0,"bytes":0,"xxh64":"ef46db3751d8e999"}]})", 0,
       {"blob 'x': \"offset\" is number, expected an unsigned integer"}},
      {"offset beyond u64", R"({"blobs":[{"name":"x","offset":18446744073709551616,"bytes":0,"xxh64":"ef46db3751d8e999"}]})",
       0, {"blob 'x': \"offset\" is number, expected an unsigned integer"}},
      {"string bytes", R"({"blobs":[{"name":"x","offset":128,"bytes":"0","xxh64":"ef46db3751d8e999"}]})", 0,
       {"blob 'x': \"bytes\" is string, expected an unsigned integer"}},
      {"no checksum", R"({"blobs":[{"name":"x","offset":128,"bytes":0}]})", 0, {"header blobs[0] has no \"xxh64\""}},
      {"checksum too short", base({blob_entry("x", 1024, 0, "ef46db3751d8e99")}).dump(), 1024,
       {"blob 'x': \"xxh64\" is not a string of 16 hex digits"}},
      {"checksum not hex", base({blob_entry("x", 1024, 0, "ef46db3751d8e99g")}).dump(), 1024,
       {"blob 'x': \"xxh64\" is not a string of 16 hex digits"}},
      {"checksum a number", R"({"blobs":[{"name":"x","offset":128,"bytes":0,"xxh64":17}]})", 0,
       {"blob 'x': \"xxh64\" is not a string"}},
      {"wrong checksum", base({blob_entry("x", 1024, 1024, "0123456789abcdef")}).dump(), 2048,
       {"blob 'x' checksum mismatch (corrupted file?)"}},
      {"invalid JSON", R"({"blobs": [)", 0, {"header JSON: parse error"}},
      {"invalid JSON with a newline", "{\"blobs\":\n[}", 0, {"header JSON: parse error"}},
      {"invalid UTF-8", "{\"blobs\":[],\"s\":\"\xff\xfe\"}", 0, {"header JSON: parse error"}},
      {"trailing garbage after JSON", R"({"blobs":[]} x)", 0, {"header JSON: parse error"}},
      {"deep nesting", std::string(1000, '[') + std::string(1000, ']'), 0,
       {"header JSON nests deeper than 128 levels"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    replace_file(p, craft(c.text, c.size));
    expect_open_error(p, c.parts);
  }
  // Nesting at the limit is fine; brackets inside strings do not count.
  json deep = json::array();
  for (int i = 0; i < kBundleMaxJsonDepth - 2; ++i) deep = json::array({deep});
  const std::string text = json{{"blobs", json::array()}, {"deep", deep}, {"s", std::string(500, '[')}}.dump();
  replace_file(p, craft(text, (32 + text.size() + 63) / 64 * 64));
  BundleFile f(p);
  EXPECT_EQ(f.header()["s"], std::string(500, '['));
  // An unknown key in a blob entry is ignored; a checksum in upper case is accepted.
  json e = blob_entry("x", 1024, 64);
  e["future"] = true;
  e["xxh64"] = fmt::format("{:016X}", bundle_xxh64(std::vector<uint8_t>(64, 0)));
  replace_file(p, craft(base({e}).dump(), 1088));
  EXPECT_EQ(BundleFile(p).blob("x").size(), 64u);
}

// ---------------------------------------------------------------------------------------------------------------
// Writer errors

void expect_writer_error(const std::function<void()>& fn, const std::string& path,
                         const std::vector<std::string>& parts) {
  auto msg = error_message(fn);
  ASSERT_TRUE(msg.has_value()) << "no error; expected: " << parts.front();
  EXPECT_TRUE(contains(*msg, path)) << *msg;
  for (const auto& p : parts) EXPECT_TRUE(contains(*msg, p)) << "expected '" << p << "' in: " << *msg;
}

TEST(BundleWriter, RejectsBadNamesAndHeaders) {
  TempDir dir;
  const std::string path = dir.file("w.lbt");
  const std::vector<uint8_t> d = {1, 2, 3};
  BundleWriter w(path);
  w.add_blob("blk.3.wq.codes", d);
  expect_writer_error([&] { w.add_blob("blk.3.wq.codes", d); }, path, {"blob 'blk.3.wq.codes' added twice"});
  expect_writer_error([&] { w.add_blob_stream("blk.3.wq.codes", 3, [](BlobSink&) {}); }, path, {"added twice"});
  expect_writer_error([&] { w.add_blob("blk.3.wq.codes", std::vector<uint8_t>{1}); }, path, {"added twice"});
  expect_writer_error([&] { w.add_blob("", d); }, path, {"blob name is empty"});
  expect_writer_error([&] { w.add_blob("bad\xff", d); }, path, {"blob name", "cannot be written as JSON"});
  expect_writer_error([&] { w.add_blob_stream("nop", 3, nullptr); }, path, {"blob 'nop' has no producer"});
  expect_writer_error([&] { w.set_header(json::array({1})); }, path, {"must be a JSON object, not array"});
  expect_writer_error([&] { w.set_header(json{{"blobs", 1}}); }, path, {"must not contain the key \"blobs\""});
  expect_writer_error([&] { w.set_header(json{{"s", "bad\xff"}}); }, path, {"bundle header cannot be written as JSON"});
  EXPECT_EQ(w.blob_count(), 1u);  // rejected blobs were not added
  w.write();
  BundleFile f(path);
  EXPECT_EQ(f.blobs().size(), 1u);
  EXPECT_EQ(f.header(), json::object());
}

TEST(BundleWriter, ProducerWritingTheWrongAmount) {
  TempDir dir;
  const std::string path = dir.file("w.lbt");
  {
    BundleWriter w(path);
    w.add_blob_stream("short", 4, [](BlobSink& s) { s.write(std::vector<uint8_t>{1, 2, 3}); });
    expect_writer_error([&] { w.write(); }, path, {"blob 'short' producer wrote 3 bytes, expected 4"});
  }
  {
    BundleWriter w(path);
    w.add_blob_stream("long", 2, [](BlobSink& s) { s.write(std::vector<uint8_t>{1, 2, 3}); });
    expect_writer_error([&] { w.write(); }, path, {"blob 'long' producer wrote more than its 2 bytes"});
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());  // no temporary, no output
}

TEST(BundleWriter, FailureLeavesNoTemporaryAndKeepsTheExistingFile) {
  TempDir dir;
  SmallBundle sb(dir);  // an existing, valid bundle at sb.path
  const auto before = read_file_bytes(sb.path);
  const auto data = pattern_bytes(3000, 5);

  bool fail_now = true;
  BundleWriter w(sb.path);
  w.set_header({{"new", true}});
  w.add_blob("first", data);
  w.add_blob_stream("gen", 100, [&](BlobSink& s) {
    s.write(data.data(), 50);  // half written when it fails
    if (fail_now) throw std::runtime_error("boom");
    s.write(data.data() + 50, 50);
  });
  expect_writer_error([&] { w.write(); }, sb.path, {"blob 'gen' producer failed: boom"});
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"small.lbt"});
  EXPECT_EQ(read_file_bytes(sb.path), before);
  EXPECT_EQ(BundleFile(sb.path).header(), sb.meta);

  // A lowbit::Error from the producer keeps its message and gains the file and blob.
  BundleWriter w2(sb.path);
  w2.add_blob_stream("q", 1, [](BlobSink&) { fail("quantizer: group size 7 does not divide 4096"); });
  expect_writer_error([&] { w2.write(); }, sb.path, {"blob 'q' producer failed: quantizer: group size 7"});
  // Exceptions of other types propagate unchanged, after the same clean-up.
  BundleWriter w3(sb.path);
  w3.add_blob_stream("q", 1, [](BlobSink&) { throw 42; });
  EXPECT_THROW(w3.write(), int);
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"small.lbt"});
  EXPECT_EQ(read_file_bytes(sb.path), before);

  // The same writer succeeds once the producer does; then the file is replaced.
  fail_now = false;
  w.write();
  BundleFile f(sb.path);
  EXPECT_EQ(f.header(), json({{"new", true}}));
  EXPECT_TRUE(std::ranges::equal(f.blob("gen"), std::span<const uint8_t>(data).first(100)));
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"small.lbt"});
}

TEST(BundleWriter, UnwritableLocation) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/m.lbt");
  BundleWriter w(path);
  expect_writer_error([&] { w.write(); }, path, {"cannot create temporary file"});
  // A directory in the way of the rename: the temporary is removed, the directory stays.
  const std::string d = dir.file("adir");
  std::filesystem::create_directory(d);
  std::filesystem::create_directory(d + "/inside");
  BundleWriter w2(d);
  expect_writer_error([&] { w2.write(); }, d, {"cannot rename"});
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"adir"});
}

TEST(BundleWriter, MovedWriterKeepsItsBlobs) {
  TempDir dir;
  const std::string path = dir.file("m.lbt");
  const auto d = pattern_bytes(77, 3);
  BundleWriter w(path);
  w.add_blob("d", d);
  BundleWriter w2(std::move(w));
  EXPECT_EQ(w2.path(), path);
  w2.write();
  EXPECT_TRUE(std::ranges::equal(BundleFile(path).blob("d"), d));
}

}  // namespace
}  // namespace lowbit
