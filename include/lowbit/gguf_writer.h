// GGUF writer (versions 2 and 3; the two share one layout). Collect metadata and tensor infos, then write():
// the file is produced in one sequential pass into `path + ".tmp.<pid>"` and renamed over `path` only when
// complete, so a reader never sees a half-written model; on any failure the temporary file is removed.
//
// Tensor data is given as bytes (copied, or moved in), as a view (borrowed: it must stay valid until write()
// returns — e.g. a tensor of a mapped input file), or as a source callback that streams the bytes into a
// GgufSink during write(), so a multi-gigabyte synthetic or converted model never has to exist in memory.
// Every tensor starts at a multiple of `general.alignment` (default 32; set it with
// add_uint32("general.alignment", n)) and is zero-padded to that multiple, as ggml and gguf-py do.
//
// Errors are lowbit::Error naming the file (and key or tensor); invalid input is rejected when it is added.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/gguf.h"

namespace lowbit {

// Where a tensor source writes its bytes. Chunks may have any size; they are buffered.
class GgufSink {
 public:
  virtual ~GgufSink() = default;
  virtual void write(const void* data, size_t n) = 0;
  void write(std::span<const uint8_t> bytes) { write(bytes.data(), bytes.size()); }
};

// Called once, from write(), in tensor order; must write exactly the tensor's byte size (else an Error).
using GgufTensorSource = std::function<void(GgufSink&)>;

struct GgufWriterOptions {
  uint32_t version = 3;  // 2 or 3
};

class GgufWriter {
 public:
  explicit GgufWriter(std::string path, GgufWriterOptions options = {});

  const std::string& path() const { return path_; }

  // ---- metadata (kept in insertion order; a duplicate key is an Error) ----
  void add_uint8(const std::string& key, uint8_t v);
  void add_int8(const std::string& key, int8_t v);
  void add_uint16(const std::string& key, uint16_t v);
  void add_int16(const std::string& key, int16_t v);
  void add_uint32(const std::string& key, uint32_t v);
  void add_int32(const std::string& key, int32_t v);
  void add_uint64(const std::string& key, uint64_t v);
  void add_int64(const std::string& key, int64_t v);
  void add_float32(const std::string& key, float v);
  void add_float64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, std::string v);

  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_int32_array(const std::string& key, std::span<const int32_t> v);
  void add_uint32_array(const std::string& key, std::span<const uint32_t> v);
  void add_int64_array(const std::string& key, std::span<const int64_t> v);
  void add_float32_array(const std::string& key, std::span<const float> v);
  void add_float64_array(const std::string& key, std::span<const double> v);
  // Any element type, including bool and nested arrays; every item must have type `elem_type`.
  void add_array(const std::string& key, GgufValueType elem_type, std::vector<GgufValue> items);

  // Any value as the reader returns it. Integer values may hold either variant alternative as long as the number
  // fits the declared type; FLOAT32 values are stored rounded to float.
  void add_value(const std::string& key, GgufValue value);

  // Copy the KV pairs of `src` (all, or those for which `filter(key)` is true) in their order and types; e.g.
  // copy a vocabulary with filter = key starts with "tokenizer.". Returns how many were copied.
  size_t copy_metadata(const GgufFile& src, const std::function<bool(const std::string& key)>& filter = {});

  bool has(const std::string& key) const { return key_index_.count(key) != 0; }
  bool erase(const std::string& key);  // false if absent
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  // ---- tensors (written in insertion order; a duplicate name is an Error) ----
  // ne: dimensions fastest-varying first (a linear weight out×in has ne = {in, out}), 1 to 4 of them, each > 0;
  // ne[0] must be a multiple of the type's block size.
  // The data must be exactly the tensor's byte size (tensor_bytes()).
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, std::span<const uint8_t> data);
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, std::vector<uint8_t>&& data);
  void add_tensor_view(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                       std::span<const uint8_t> data);  // not copied: keep it alive until write() returns
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, GgufTensorSource source);
  // The byte size of a tensor of this type and shape (validated as add_tensor does; errors name `what`).
  static uint64_t tensor_bytes(GgmlType type, const std::vector<uint64_t>& ne, const std::string& what = "tensor");
  size_t tensor_count() const { return tensors_.size(); }

  uint32_t alignment() const;  // from `general.alignment` if added, else 32

  // Write the file (temporary + rename). May be called again (e.g. after adding more), re-running the sources.
  // Returns the file size in bytes.
  uint64_t write();

 private:
  struct TensorEntry {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    uint64_t n_bytes;
    GgufTensorSource source;
  };
  void add_checked(const std::string& key, GgufValue value);
  void check_size(const std::string& name, GgmlType type, const std::vector<uint64_t>& ne, size_t size) const;

  std::string path_;
  GgufWriterOptions options_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> key_index_;
  std::vector<TensorEntry> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace lowbit
