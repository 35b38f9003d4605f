// GGUF layout (ggml docs/gguf.md): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count, then kv_count
// key/value pairs, then tensor_count tensor infos, then padding to `general.alignment`, then the data section.
// Strings are u64 length + bytes (no terminator). Everything is little-endian.
#include "lowbit/gguf.h"

#include <cstring>
#include <limits>

#include "lowbit/error.h"

namespace lowbit {

namespace {

constexpr GgmlTypeInfo kTypes[] = {
    {"F32", 1, 4, true},        {"F16", 1, 2, true},       {"Q4_0", 32, 18, true},   {"Q4_1", 32, 20, true},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},    {"Q5_0", 32, 22, false},  {"Q5_1", 32, 24, false},
    {"Q8_0", 32, 34, true},     {"Q8_1", 32, 36, false},   {"Q2_K", 256, 84, false}, {"Q3_K", 256, 110, false},
    {"Q4_K", 256, 144, false},  {"Q5_K", 256, 176, false}, {"Q6_K", 256, 210, false}, {"Q8_K", 256, 292, false},
    {"IQ2_XXS", 256, 66, false}, {"IQ2_XS", 256, 74, false}, {"IQ3_XXS", 256, 98, false}, {"IQ1_S", 256, 50, false},
    {"IQ4_NL", 32, 18, false},  {"IQ3_S", 256, 110, false}, {"IQ2_S", 256, 82, false}, {"IQ4_XS", 256, 136, false},
    {"I8", 1, 1, false},        {"I16", 1, 2, false},      {"I32", 1, 4, false},     {"I64", 1, 8, false},
    {"F64", 1, 8, false},       {"IQ1_M", 256, 56, false}, {"BF16", 1, 2, true},     {nullptr, 0, 0, false},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},    {"TQ1_0", 256, 54, false}, {"TQ2_0", 256, 66, false},
};

constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxNesting = 4;
// Metadata array items are decoded into ~48-byte values; cap their total so a hostile file cannot make us
// allocate many times its own size. Real vocabularies hold well under a million entries.
constexpr uint64_t kMaxArrayItems = uint64_t(1) << 24;

// A bounds-checked cursor over the mapped bytes. `what` describes the field being read for error messages.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      fail("{}: truncated at offset {} reading {} (needs {} bytes, {} left)", path_, pos_, what, n, remaining());
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    uint64_t len = read<uint64_t>(what + " length");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Smallest encoded size of one value of a type, used to reject absurd counts before allocating.
uint64_t min_encoded_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& what, const std::string& path, int depth,
                     uint64_t& array_items) {
  GgufValue out;
  out.type = type;
  switch (type) {
    case GgufValueType::UINT8: out.v = uint64_t(c.read<uint8_t>(what)); break;
    case GgufValueType::INT8: out.v = int64_t(c.read<int8_t>(what)); break;
    case GgufValueType::UINT16: out.v = uint64_t(c.read<uint16_t>(what)); break;
    case GgufValueType::INT16: out.v = int64_t(c.read<int16_t>(what)); break;
    case GgufValueType::UINT32: out.v = uint64_t(c.read<uint32_t>(what)); break;
    case GgufValueType::INT32: out.v = int64_t(c.read<int32_t>(what)); break;
    case GgufValueType::UINT64: out.v = c.read<uint64_t>(what); break;
    case GgufValueType::INT64: out.v = c.read<int64_t>(what); break;
    case GgufValueType::FLOAT32: out.v = double(c.read<float>(what)); break;
    case GgufValueType::FLOAT64: out.v = c.read<double>(what); break;
    case GgufValueType::BOOL: {
      uint8_t b = c.read<uint8_t>(what);
      if (b > 1) fail("{}: {} is a bool with value {} (expected 0 or 1)", path, what, b);
      out.v = b != 0;
      break;
    }
    case GgufValueType::STRING: out.v = c.read_string(what); break;
    case GgufValueType::ARRAY: {
      if (depth >= static_cast<int>(kMaxNesting)) fail("{}: {} nests arrays deeper than {}", path, what, kMaxNesting);
      uint32_t et = c.read<uint32_t>(what + " element type");
      if (et > static_cast<uint32_t>(GgufValueType::FLOAT64))
        fail("{}: {} has unknown array element type {}", path, what, et);
      uint64_t n = c.read<uint64_t>(what + " element count");
      auto elem = static_cast<GgufValueType>(et);
      if (n > c.remaining() / min_encoded_size(elem))
        fail("{}: {} claims {} elements, more than the {} bytes left in the file can hold", path, what, n,
             c.remaining());
      array_items += n;
      if (array_items > kMaxArrayItems)
        fail("{}: {} brings the metadata to more than {} array elements", path, what, kMaxArrayItems);
      GgufArray arr;
      arr.elem_type = elem;
      arr.items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr.items.push_back(read_value(c, elem, what, path, depth + 1, array_items));
      out.v = std::move(arr);
      break;
    }
    default: fail("{}: {} has unknown value type {}", path, what, static_cast<uint32_t>(type));
  }
  return out;
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  if (type >= sizeof(kTypes) / sizeof(kTypes[0]) || kTypes[type].name == nullptr) return nullptr;
  return &kTypes[type];
}

std::string ggml_type_name(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  return info ? info->name : fmt::format("type#{}", static_cast<uint32_t>(type));
}

const char* gguf_value_type_name(GgufValueType t) {
  static const char* names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                "bool", "string", "array", "uint64", "int64", "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}
bool GgufValue::is_float() const { return std::holds_alternative<double>(v); }

GgufFile::GgufFile(const std::string& path, GgufOptions options) : name_(path) {
  auto file = std::make_shared<MappedFile>(path);
  data_ = file->data();
  size_ = file->size();
  keepalive_ = std::move(file);
  parse(options);
}

GgufFile::GgufFile(const std::string& name, const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
                   GgufOptions options)
    : name_(name), keepalive_(std::move(keepalive)), data_(data), size_(size) {
  parse(options);
}

void GgufFile::parse(GgufOptions options) {
  const std::string& path = name_;
  Cursor c(path, data_, size_);
  if (size_ == 0) fail("{}: empty file, expected a GGUF model", path);
  if (size_ < 4 || std::memcmp(data_, "GGUF", 4) != 0)
    fail("{}: not a GGUF file (bad magic at offset 0)", path);
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("header version");
  if (version_ != 2 && version_ != 3)
    fail("{}: GGUF version {} is not supported (only versions 2 and 3)", path, version_);
  uint64_t n_tensors = c.read<uint64_t>("header tensor_count");
  uint64_t n_kv = c.read<uint64_t>("header kv_count");
  // Each kv needs at least a key length (8) and a value type (4); each tensor info at least 8+4+8+4+8 bytes.
  if (n_kv > c.remaining() / 12)
    fail("{}: header kv_count {} is larger than the file ({} bytes) can hold", path, n_kv, size_);
  if (n_tensors > c.remaining() / 32)
    fail("{}: header tensor_count {} is larger than the file ({} bytes) can hold", path, n_tensors, size_);

  kv_.reserve(n_kv);
  uint64_t array_items = 0;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string(fmt::format("metadata key #{}", i));
    uint32_t t = c.read<uint32_t>(fmt::format("metadata '{}' value type", key));
    if (t > static_cast<uint32_t>(GgufValueType::FLOAT64))
      fail("{}: metadata '{}' has unknown value type {}", path, key, t);
    GgufValue v = read_value(c, static_cast<GgufValueType>(t), fmt::format("metadata '{}'", key), path, 0, array_items);
    if (index_.count(key)) fail("{}: metadata key '{}' appears twice", path, key);
    index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer()) fail("{}: metadata 'general.alignment' must be an integer", path);
    uint64_t al = get_uint("general.alignment");
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
      fail("{}: metadata 'general.alignment' = {} is not a power of two", path, al);
    alignment_ = static_cast<uint32_t>(al);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.read_string(fmt::format("tensor #{} name", i));
    std::string what = fmt::format("tensor '{}'", t.name);
    uint32_t n_dims = c.read<uint32_t>(what + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) fail("{}: {} has {} dimensions (1..{} allowed)", path, what, n_dims, kMaxDims);
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>(what + " dimension");
      if (ne == 0 || ne > (uint64_t(1) << 40)) fail("{}: {} dimension {} is {}", path, what, d, ne);
      if (t.n_elements > std::numeric_limits<uint64_t>::max() / ne)
        fail("{}: {} element count overflows", path, what);
      t.n_elements *= ne;
      t.ne.push_back(ne);
    }
    uint32_t type = c.read<uint32_t>(what + " type");
    const GgmlTypeInfo* info = ggml_type_info(type);
    if (!info) fail("{}: {} has unknown tensor type {}", path, what, type);
    if (!info->supported && !options.allow_unsupported_types)
      fail("{}: {} has type {}, which lowbit does not support (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)", path,
           what, info->name);
    t.type = static_cast<GgmlType>(type);
    if (t.ne[0] % info->block_size != 0)
      fail("{}: {} row length {} is not a multiple of the {} block size {}", path, what, t.ne[0], info->name,
           info->block_size);
    if (t.n_elements / info->block_size > std::numeric_limits<uint64_t>::max() / info->block_bytes)
      fail("{}: {} byte size overflows", path, what);
    t.n_bytes = t.n_elements / info->block_size * info->block_bytes;
    t.offset = c.read<uint64_t>(what + " data offset");
    if (t.offset % alignment_ != 0)
      fail("{}: {} data offset {} is not a multiple of the alignment {}", path, what, t.offset, alignment_);
    if (tensor_index_.count(t.name)) fail("{}: tensor name '{}' appears twice", path, t.name);
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_)
    fail("{}: truncated: the data section would start at offset {}, past the end ({} bytes)", path, data_offset_,
         size_);
  uint64_t data_size = size_ > data_offset_ ? size_ - data_offset_ : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      fail("{}: tensor '{}' data [{}, {}) lies past the end of the file (data section holds {} bytes)", path, t.name,
           t.offset, t.offset + t.n_bytes, data_size);
    t.data = data_ + data_offset_ + t.offset;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) fail("{}: tensor '{}' is missing", path(), name);
  return *t;
}

namespace {
const GgufValue& require(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) fail("{}: metadata '{}' is missing", f.path(), key);
  return *v;
}
const GgufArray& require_array(const GgufFile& f, const std::string& key) {
  const GgufValue& v = require(f, key);
  if (!std::holds_alternative<GgufArray>(v.v)) fail("{}: metadata '{}' must be an array", f.path(), key);
  return std::get<GgufArray>(v.v);
}
int64_t as_int(const GgufFile& f, const std::string& key, const GgufValue& v) {
  if (auto* u = std::get_if<uint64_t>(&v.v)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: metadata '{}' value {} is out of range", f.path(), key, *u);
    return static_cast<int64_t>(*u);
  }
  if (auto* i = std::get_if<int64_t>(&v.v)) return *i;
  fail("{}: metadata '{}' must be an integer, found {}", f.path(), key, gguf_value_type_name(v.type));
}
double as_float(const GgufFile& f, const std::string& key, const GgufValue& v) {
  if (auto* d = std::get_if<double>(&v.v)) return *d;
  if (v.is_integer()) return static_cast<double>(as_int(f, key, v));
  fail("{}: metadata '{}' must be a number, found {}", f.path(), key, gguf_value_type_name(v.type));
}
}  // namespace

uint64_t GgufFile::get_uint(const std::string& key) const {
  int64_t i = as_int(*this, key, require(*this, key));
  if (i < 0) fail("{}: metadata '{}' is negative ({})", path(), key, i);
  return static_cast<uint64_t>(i);
}
uint64_t GgufFile::get_uint(const std::string& key, uint64_t fallback) const {
  return has(key) ? get_uint(key) : fallback;
}
int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? as_int(*this, key, require(*this, key)) : fallback;
}
double GgufFile::get_float(const std::string& key) const { return as_float(*this, key, require(*this, key)); }
double GgufFile::get_float(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (auto* b = std::get_if<bool>(&v->v)) return *b;
  fail("{}: metadata '{}' must be a bool, found {}", path(), key, gguf_value_type_name(v->type));
}
std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (auto* s = std::get_if<std::string>(&v.v)) return *s;
  fail("{}: metadata '{}' must be a string, found {}", path(), key, gguf_value_type_name(v.type));
}
std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufArray& a = require_array(*this, key);
  if (a.elem_type != GgufValueType::STRING) fail("{}: metadata '{}' must be an array of strings", path(), key);
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(std::get<std::string>(it.v));
  return out;
}
std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufArray& a = require_array(*this, key);
  std::vector<double> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(as_float(*this, key, it));
  return out;
}
std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufArray& a = require_array(*this, key);
  std::vector<int64_t> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(as_int(*this, key, it));
  return out;
}

std::string gguf_value_to_string(const GgufValue& v, size_t max_items) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          std::string s = "[";
          for (size_t i = 0; i < x.items.size() && i < max_items; ++i)
            s += (i ? ", " : "") + gguf_value_to_string(x.items[i], max_items);
          if (x.items.size() > max_items) s += fmt::format(", ... ({} items)", x.items.size());
          return s + "]";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return x.size() > 80 ? fmt::format("\"{}...\" ({} bytes)", x.substr(0, 80), x.size()) : "\"" + x + "\"";
        } else {
          return fmt::format("{}", x);
        }
      },
      v.v);
}

}  // namespace lowbit
