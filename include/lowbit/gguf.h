// GGUF reader (versions 2 and 3). The file is mmap'ed; tensor data is used in place.
// Every count, length and offset is checked against the file size before it is used, so a truncated or
// hostile file yields a lowbit::Error naming the file and the field, never a crash or a huge allocation.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lowbit/mapped_file.h"

namespace lowbit {

// ggml tensor types (ggml.h numbering). Only some are supported for compute; the rest are known by name so
// errors can say what a file holds.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
};

struct GgmlTypeInfo {
  const char* name;
  uint32_t block_size;   // elements per block
  uint32_t block_bytes;  // bytes per block
  bool supported;        // lowbit can compute with it
};
// nullptr for a type number ggml does not define.
const GgmlTypeInfo* ggml_type_info(uint32_t type);
std::string ggml_type_name(GgmlType type);

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

struct GgufValue;
struct GgufArray {
  GgufValueType elem_type;
  std::vector<GgufValue> items;
};
struct GgufValue {
  GgufValueType type;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> v;

  bool is_integer() const;
  bool is_float() const;
};

struct GgufTensor {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;  // dims, fastest-varying first (a linear weight out×in has ne = {in, out})
  uint64_t offset = 0;       // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
};

struct GgufOptions {
  // Accept tensors of types lowbit cannot compute with (for `inspect`); by default they are an error.
  bool allow_unsupported_types = false;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path, GgufOptions options = {});
  // Parses GGUF bytes already in memory (e.g. the metadata blob inside a bundle); `name` is used in errors and
  // `keepalive` holds whatever owns the bytes.
  GgufFile(const std::string& name, const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
           GgufOptions options = {});

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  bool has(const std::string& key) const { return index_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;
  const GgufTensor& tensor(const std::string& name) const;  // throws naming the file and tensor

  // Typed getters: throw an Error naming the file and key when the key is missing or of the wrong type.
  uint64_t get_uint(const std::string& key) const;
  uint64_t get_uint(const std::string& key, uint64_t fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;

 private:
  void parse(GgufOptions options);

  std::string name_;
  std::shared_ptr<const void> keepalive_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

std::string gguf_value_to_string(const GgufValue& v, size_t max_items = 8);

}  // namespace lowbit
