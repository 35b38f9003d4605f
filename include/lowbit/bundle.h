// The .lbt bundle: one deployable file holding a JSON header (whatever the caller puts there: model config,
// tokenizer, quantization recipe, ...) and any number of named binary blobs (weights, tables), each starting at a
// 64-byte-aligned offset so it can be used in place from a memory map. The byte layout is documented in
// docs/formats.md ("The .lbt bundle"); this file is the API.
//
//   lowbit::BundleWriter w("model.lbt");
//   w.set_header({{"arch", "llama"}, {"dim", 576}});
//   w.add_blob("tok_embd", bytes);                       // borrowed: keep `bytes` alive until write() returns
//   w.add_blob_stream("blk.0.wq.codes", n, [&](lowbit::BlobSink& s) { s.write(chunk); ... });
//   w.write();
//
//   lowbit::BundleFile f("model.lbt");                   // mmap; every check done here, blobs verified (XXH64)
//   const nlohmann::json& h = f.header();                // {"arch": "llama", "dim": 576}
//   std::span<const uint8_t> e = f.blob("tok_embd");     // points into the mapping, 64-byte aligned
//
// Errors are lowbit::Error naming the file (and the blob or field at fault).
//
// Only nlohmann/json's forward declarations are included here; code that builds or reads a header includes
// <nlohmann/json.hpp> itself (lowbit_lib links nlohmann_json PUBLIC, so the include path is there).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

// Format constants (see docs/formats.md).
inline constexpr uint8_t kBundleMagic[8] = {0x89, 'L', 'B', 'T', '\r', '\n', 0x1a, '\n'};
inline constexpr uint32_t kBundleVersion = 1;      // the newest version this build reads and the one it writes
inline constexpr uint64_t kBundleFixedHeaderBytes = 32;
inline constexpr uint64_t kBundleAlignment = 64;   // every blob offset (from the start of the file) is a multiple
inline constexpr int kBundleMaxJsonDepth = 128;    // deeper nesting in a header is rejected (readers recurse)

// The checksum used throughout the format: XXH64 with seed 0 (what `xxhsum -H1` / `xxh64sum` print).
uint64_t bundle_xxh64(std::span<const uint8_t> bytes);

struct BlobInfo {
  std::string name;
  uint64_t offset = 0;  // from the start of the file; a multiple of kBundleAlignment
  uint64_t bytes = 0;
  uint64_t xxh64 = 0;   // bundle_xxh64 of the blob's bytes
};

// Where a streamed blob's producer writes its bytes. Chunks may have any size (they are buffered).
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  virtual void write(const void* data, size_t n) = 0;
  void write(std::span<const uint8_t> bytes) { write(bytes.data(), bytes.size()); }
};

class BundleWriter {
 public:
  explicit BundleWriter(std::string path);
  ~BundleWriter();
  BundleWriter(BundleWriter&&) noexcept;
  BundleWriter& operator=(BundleWriter&&) noexcept;

  const std::string& path() const { return path_; }

  // The caller's header: a JSON object without the key "blobs" (the writer adds that). Replaces any earlier one;
  // the default is {}. Strings must be valid UTF-8 (checked here).
  void set_header(nlohmann::json meta);

  // Blobs are written in the order they are added. Names: non-empty, valid UTF-8, unique (else an Error naming
  // the name).
  // Borrowed, not copied: the memory must stay valid and unchanged until write() returns.
  void add_blob(std::string name, std::span<const uint8_t> bytes);
  // Owned: the bytes are moved into the writer.
  void add_blob(std::string name, std::vector<uint8_t>&& bytes);
  // Streamed: `produce` is called once per write(), in blob order, and must write exactly `bytes` bytes into
  // the sink (fewer or more is an Error naming the blob); an exception from it fails write() (also named).
  void add_blob_stream(std::string name, uint64_t bytes, std::function<void(BlobSink&)> produce);

  size_t blob_count() const;

  // Writes the bundle to `path + ".tmp.<pid>"` in one sequential pass (checksums are computed while the blobs
  // stream; then the header, whose size was known in advance, is written into the space reserved for it at the
  // start), and renames it over `path`. On any failure the temporary file is removed and an existing `path` is
  // left untouched. May be called again (streams are re-run). Returns the file size in bytes.
  uint64_t write();

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

class BundleFile {
 public:
  // Maps the file and checks everything before returning: magic, version, flags, header length and checksum, the
  // header JSON, every blob entry (types, alignment, bounds, no overlaps, exact file size) and — if
  // verify_checksums — every blob's XXH64 (which reads the whole file once).
  explicit BundleFile(std::string path, bool verify_checksums = true);
  ~BundleFile();
  BundleFile(BundleFile&&) noexcept;
  BundleFile& operator=(BundleFile&&) noexcept;

  const std::string& path() const;
  uint32_t version() const;
  uint64_t file_size() const;

  // The caller's header object as written (without the "blobs" key; use blobs()).
  const nlohmann::json& header() const;

  // In file order (the writer's insertion order).
  const std::vector<BlobInfo>& blobs() const;
  bool has_blob(const std::string& name) const;
  const BlobInfo& blob_info(const std::string& name) const;  // throws naming the file and blob if absent
  // The blob's bytes inside the mapping (valid while this BundleFile lives); data() is 64-byte aligned, also for
  // an empty blob. Throws naming the file and blob if absent.
  std::span<const uint8_t> blob(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
