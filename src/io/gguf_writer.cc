// GGUF layout written here (ggml docs/gguf.md, identical for versions 2 and 3): magic "GGUF", u32 version,
// u64 tensor_count, u64 kv_count; kv_count × {string key, u32 value type, value}; tensor_count × {string name,
// u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset}; zero padding to the alignment; then each tensor's
// bytes at its offset (relative to the start of the data section), each zero-padded to the alignment.
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements. Little-endian.
#include "lowbit/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>

#include <fmt/ranges.h>

#include "lowbit/error.h"

namespace lowbit {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

namespace {

constexpr int kMaxArrayNesting = 4;    // arrays inside arrays: the reader accepts this many levels
constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) including the terminator
constexpr uint64_t kMaxDim = uint64_t(1) << 40;  // the reader's limit per dimension
constexpr uint64_t kMaxAlignment = uint64_t(1) << 20;

bool valid_value_type(GgufValueType t) { return static_cast<uint32_t>(t) <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

// Checks that `v` holds what its declared type says and brings integers to the canonical alternative
// (uint64_t for unsigned types, int64_t for signed ones), so encoding needs no further checks.
void normalize(const std::string& path, const std::string& what, GgufValue& v, int depth) {
  auto wrong = [&](const char* expected) {
    fail("{}: {} is declared {} but holds {}", path, what, gguf_value_type_name(v.type), expected);
  };
  auto as_u64 = [&](uint64_t max) -> uint64_t {
    uint64_t u = 0;
    if (auto* p = std::get_if<uint64_t>(&v.v)) {
      u = *p;
    } else if (auto* q = std::get_if<int64_t>(&v.v)) {
      if (*q < 0) fail("{}: {} = {} does not fit {}", path, what, *q, gguf_value_type_name(v.type));
      u = static_cast<uint64_t>(*q);
    } else {
      wrong("a non-integer");
    }
    if (u > max) fail("{}: {} = {} does not fit {}", path, what, u, gguf_value_type_name(v.type));
    return u;
  };
  auto as_i64 = [&](int64_t min, int64_t max) -> int64_t {
    int64_t i = 0;
    if (auto* q = std::get_if<int64_t>(&v.v)) {
      i = *q;
    } else if (auto* p = std::get_if<uint64_t>(&v.v)) {
      if (*p > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: {} = {} does not fit {}", path, what, *p, gguf_value_type_name(v.type));
      i = static_cast<int64_t>(*p);
    } else {
      wrong("a non-integer");
    }
    if (i < min || i > max) fail("{}: {} = {} does not fit {}", path, what, i, gguf_value_type_name(v.type));
    return i;
  };
  switch (v.type) {
    case GgufValueType::UINT8: v.v = as_u64(0xff); break;
    case GgufValueType::UINT16: v.v = as_u64(0xffff); break;
    case GgufValueType::UINT32: v.v = as_u64(0xffffffffu); break;
    case GgufValueType::UINT64: v.v = as_u64(std::numeric_limits<uint64_t>::max()); break;
    case GgufValueType::INT8: v.v = as_i64(-128, 127); break;
    case GgufValueType::INT16: v.v = as_i64(-32768, 32767); break;
    case GgufValueType::INT32:
      v.v = as_i64(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
      break;
    case GgufValueType::INT64:
      v.v = as_i64(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
      break;
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      if (!std::holds_alternative<double>(v.v)) wrong("a non-float");
      break;
    case GgufValueType::BOOL:
      if (!std::holds_alternative<bool>(v.v)) wrong("a non-bool");
      break;
    case GgufValueType::STRING:
      if (!std::holds_alternative<std::string>(v.v)) wrong("a non-string");
      break;
    case GgufValueType::ARRAY: {
      auto* a = std::get_if<GgufArray>(&v.v);
      if (!a) wrong("a non-array");
      if (depth >= kMaxArrayNesting) fail("{}: {} nests arrays deeper than {}", path, what, kMaxArrayNesting);
      if (!valid_value_type(a->elem_type))
        fail("{}: {} has unknown array element type {}", path, what, static_cast<uint32_t>(a->elem_type));
      for (size_t i = 0; i < a->items.size(); ++i) {
        GgufValue& item = a->items[i];
        if (item.type != a->elem_type)
          fail("{}: {} item {} is {} in an array of {}", path, what, i, gguf_value_type_name(item.type),
               gguf_value_type_name(a->elem_type));
        normalize(path, what, item, depth + 1);
      }
      break;
    }
    default: fail("{}: {} has unknown value type {}", path, what, static_cast<uint32_t>(v.type));
  }
}

// Buffered output to the temporary file. Errors name the final path (the one the user asked for).
class FileOut : public GgufSink {
 public:
  FileOut(const std::string& path, const std::string& tmp) : path_(path), tmp_(tmp), buf_(kBufSize) {
    fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno));
  }
  ~FileOut() override {
    if (fd_ >= 0) ::close(fd_);
  }

  uint64_t pos() const { return pos_; }

  void write(const void* data, size_t n) override {
    const auto* p = static_cast<const uint8_t*>(data);
    pos_ += n;
    if (used_ + n <= buf_.size()) {
      std::memcpy(buf_.data() + used_, p, n);
      used_ += n;
      return;
    }
    flush();
    if (n >= buf_.size()) {
      write_fd(p, n);
    } else {
      std::memcpy(buf_.data(), p, n);
      used_ = n;
    }
  }
  template <typename T>
  void put(T v) {
    write(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    uint64_t n = (alignment - pos_ % alignment) % alignment;
    while (n > 0) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof(zeros)));
      write(zeros, k);
      n -= k;
    }
  }
  void finish() {
    flush();
    // No fsync: the rename already guarantees readers never see a partial file, and on ext4/xfs a rename over
    // an existing file orders the data first; syncing every tiny test model would only cost time.
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("{}: cannot write {}: {}", path_, tmp_, std::strerror(errno));
  }

 private:
  static constexpr size_t kBufSize = size_t(1) << 20;

  void flush() {
    write_fd(buf_.data(), used_);
    used_ = 0;
  }
  void write_fd(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("{}: cannot write {}: {}", path_, tmp_, std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  const std::string& path_;
  const std::string& tmp_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  size_t used_ = 0;
  uint64_t pos_ = 0;
};

// Forwards one tensor's bytes, refusing more than the tensor holds.
class TensorSink : public GgufSink {
 public:
  TensorSink(FileOut& out, const std::string& path, const std::string& name, uint64_t expected)
      : out_(out), path_(path), name_(name), expected_(expected) {}
  void write(const void* data, size_t n) override {
    if (n > expected_ - written_)
      fail("{}: tensor '{}' source wrote more than its {} bytes", path_, name_, expected_);
    out_.write(data, n);
    written_ += n;
  }
  uint64_t written() const { return written_; }

 private:
  FileOut& out_;
  const std::string& path_;
  const std::string& name_;
  uint64_t expected_;
  uint64_t written_ = 0;
};

void encode_value(FileOut& out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::UINT8: out.put(static_cast<uint8_t>(std::get<uint64_t>(v.v))); break;
    case GgufValueType::UINT16: out.put(static_cast<uint16_t>(std::get<uint64_t>(v.v))); break;
    case GgufValueType::UINT32: out.put(static_cast<uint32_t>(std::get<uint64_t>(v.v))); break;
    case GgufValueType::UINT64: out.put(std::get<uint64_t>(v.v)); break;
    case GgufValueType::INT8: out.put(static_cast<int8_t>(std::get<int64_t>(v.v))); break;
    case GgufValueType::INT16: out.put(static_cast<int16_t>(std::get<int64_t>(v.v))); break;
    case GgufValueType::INT32: out.put(static_cast<int32_t>(std::get<int64_t>(v.v))); break;
    case GgufValueType::INT64: out.put(std::get<int64_t>(v.v)); break;
    case GgufValueType::FLOAT32: out.put(static_cast<float>(std::get<double>(v.v))); break;
    case GgufValueType::FLOAT64: out.put(std::get<double>(v.v)); break;
    case GgufValueType::BOOL: out.put(static_cast<uint8_t>(std::get<bool>(v.v) ? 1 : 0)); break;
    case GgufValueType::STRING: out.put_string(std::get<std::string>(v.v)); break;
    case GgufValueType::ARRAY: {
      const auto& a = std::get<GgufArray>(v.v);
      out.put(static_cast<uint32_t>(a.elem_type));
      out.put(static_cast<uint64_t>(a.items.size()));
      for (const auto& item : a.items) encode_value(out, item);
      break;
    }
  }
}

template <typename T>
GgufValue scalar(GgufValueType type, T v) {
  GgufValue out;
  out.type = type;
  out.v = v;
  return out;
}

template <typename Out, typename In>
GgufValue array_of(GgufValueType elem, std::span<const In> items) {
  GgufValue out;
  out.type = GgufValueType::ARRAY;
  GgufArray a;
  a.elem_type = elem;
  a.items.reserve(items.size());
  for (const In& x : items) a.items.push_back(scalar(elem, static_cast<Out>(x)));
  out.v = std::move(a);
  return out;
}

}  // namespace

GgufWriter::GgufWriter(std::string path, GgufWriterOptions options) : path_(std::move(path)), options_(options) {
  if (options_.version != 2 && options_.version != 3)
    fail("{}: cannot write GGUF version {} (only 2 and 3)", path_, options_.version);
}

void GgufWriter::add_checked(const std::string& key, GgufValue value) {
  if (key.empty()) fail("{}: metadata key is empty", path_);
  if (has(key)) fail("{}: metadata key '{}' added twice", path_, key);
  const std::string what = fmt::format("metadata '{}'", key);
  normalize(path_, what, value, 0);
  if (key == "general.alignment") {
    if (!value.is_integer()) fail("{}: metadata 'general.alignment' must be an integer", path_);
    const auto* s = std::get_if<int64_t>(&value.v);  // normalize made signed types int64_t, unsigned uint64_t
    if (s && *s <= 0) fail("{}: metadata 'general.alignment' = {} is not a power of two", path_, *s);
    const uint64_t al = s ? static_cast<uint64_t>(*s) : std::get<uint64_t>(value.v);
    if (al == 0 || (al & (al - 1)) != 0 || al > kMaxAlignment)
      fail("{}: metadata 'general.alignment' = {} is not a power of two up to {}", path_, al, kMaxAlignment);
  }
  key_index_[key] = kv_.size();
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_uint8(const std::string& key, uint8_t v) { add_checked(key, scalar(GgufValueType::UINT8, uint64_t(v))); }
void GgufWriter::add_int8(const std::string& key, int8_t v) { add_checked(key, scalar(GgufValueType::INT8, int64_t(v))); }
void GgufWriter::add_uint16(const std::string& key, uint16_t v) { add_checked(key, scalar(GgufValueType::UINT16, uint64_t(v))); }
void GgufWriter::add_int16(const std::string& key, int16_t v) { add_checked(key, scalar(GgufValueType::INT16, int64_t(v))); }
void GgufWriter::add_uint32(const std::string& key, uint32_t v) { add_checked(key, scalar(GgufValueType::UINT32, uint64_t(v))); }
void GgufWriter::add_int32(const std::string& key, int32_t v) { add_checked(key, scalar(GgufValueType::INT32, int64_t(v))); }
void GgufWriter::add_uint64(const std::string& key, uint64_t v) { add_checked(key, scalar(GgufValueType::UINT64, v)); }
void GgufWriter::add_int64(const std::string& key, int64_t v) { add_checked(key, scalar(GgufValueType::INT64, v)); }
void GgufWriter::add_float32(const std::string& key, float v) { add_checked(key, scalar(GgufValueType::FLOAT32, double(v))); }
void GgufWriter::add_float64(const std::string& key, double v) { add_checked(key, scalar(GgufValueType::FLOAT64, v)); }
void GgufWriter::add_bool(const std::string& key, bool v) { add_checked(key, scalar(GgufValueType::BOOL, v)); }
void GgufWriter::add_string(const std::string& key, std::string v) {
  add_checked(key, scalar(GgufValueType::STRING, std::move(v)));
}

void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  add_checked(key, array_of<std::string>(GgufValueType::STRING, std::span<const std::string>(v)));
}
void GgufWriter::add_int32_array(const std::string& key, std::span<const int32_t> v) {
  add_checked(key, array_of<int64_t>(GgufValueType::INT32, v));
}
void GgufWriter::add_uint32_array(const std::string& key, std::span<const uint32_t> v) {
  add_checked(key, array_of<uint64_t>(GgufValueType::UINT32, v));
}
void GgufWriter::add_int64_array(const std::string& key, std::span<const int64_t> v) {
  add_checked(key, array_of<int64_t>(GgufValueType::INT64, v));
}
void GgufWriter::add_float32_array(const std::string& key, std::span<const float> v) {
  add_checked(key, array_of<double>(GgufValueType::FLOAT32, v));
}
void GgufWriter::add_float64_array(const std::string& key, std::span<const double> v) {
  add_checked(key, array_of<double>(GgufValueType::FLOAT64, v));
}
void GgufWriter::add_array(const std::string& key, GgufValueType elem_type, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.v = GgufArray{elem_type, std::move(items)};
  add_checked(key, std::move(v));
}
void GgufWriter::add_value(const std::string& key, GgufValue value) { add_checked(key, std::move(value)); }

size_t GgufWriter::copy_metadata(const GgufFile& src, const std::function<bool(const std::string&)>& filter) {
  size_t n = 0;
  for (const auto& [key, value] : src.metadata()) {
    if (filter && !filter(key)) continue;
    if (has(key)) fail("{}: metadata key '{}' copied from {} is already set", path_, key, src.path());
    add_checked(key, value);
    ++n;
  }
  return n;
}

bool GgufWriter::erase(const std::string& key) {
  auto it = key_index_.find(key);
  if (it == key_index_.end()) return false;
  kv_.erase(kv_.begin() + static_cast<std::ptrdiff_t>(it->second));
  key_index_.clear();
  for (size_t i = 0; i < kv_.size(); ++i) key_index_[kv_[i].first] = i;
  return true;
}

uint32_t GgufWriter::alignment() const {
  auto it = key_index_.find("general.alignment");
  if (it == key_index_.end()) return 32;
  const GgufValue& v = kv_[it->second].second;  // validated by add_checked
  if (const auto* s = std::get_if<int64_t>(&v.v)) return static_cast<uint32_t>(*s);
  return static_cast<uint32_t>(std::get<uint64_t>(v.v));
}

uint64_t GgufWriter::tensor_bytes(GgmlType type, const std::vector<uint64_t>& ne, const std::string& what) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) fail("{} has unknown ggml type {}", what, static_cast<uint32_t>(type));
  if (ne.empty() || ne.size() > 4) fail("{} has {} dimensions (1..4 allowed)", what, ne.size());
  uint64_t n = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] == 0 || ne[d] > kMaxDim) fail("{} dimension {} is {} (1..2^40 allowed)", what, d, ne[d]);
    if (n > std::numeric_limits<uint64_t>::max() / ne[d]) fail("{} element count overflows", what);
    n *= ne[d];
  }
  if (ne[0] % info->block_size != 0)
    fail("{} row length {} is not a multiple of the {} block size {}", what, ne[0], info->name, info->block_size);
  if (n / info->block_size > std::numeric_limits<uint64_t>::max() / info->block_bytes)
    fail("{} byte size overflows", what);
  return n / info->block_size * info->block_bytes;
}

void GgufWriter::check_size(const std::string& name, GgmlType type, const std::vector<uint64_t>& ne,
                            size_t size) const {
  const uint64_t n_bytes = tensor_bytes(type, ne, fmt::format("{}: tensor '{}'", path_, name));
  if (size != n_bytes)
    fail("{}: tensor '{}' data is {} bytes, but {} [{}] needs {}", path_, name, size, ggml_type_name(type),
         fmt::join(ne, ", "), n_bytes);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                            std::span<const uint8_t> data) {
  add_tensor(name, type, std::move(ne), std::vector<uint8_t>(data.begin(), data.end()));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                            std::vector<uint8_t>&& data) {
  check_size(name, type, ne, data.size());
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(data));
  add_tensor(name, type, std::move(ne), [owned](GgufSink& sink) { sink.write(*owned); });
}

void GgufWriter::add_tensor_view(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                                 std::span<const uint8_t> data) {
  check_size(name, type, ne, data.size());
  add_tensor(name, type, std::move(ne), [data](GgufSink& sink) { sink.write(data); });
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, GgufTensorSource source) {
  if (name.empty()) fail("{}: tensor name is empty", path_);
  if (name.size() > kMaxTensorName)
    fail("{}: tensor name '{}' is {} bytes long (ggml allows at most {})", path_, name, name.size(), kMaxTensorName);
  if (tensor_index_.count(name)) fail("{}: tensor '{}' added twice", path_, name);
  if (!source) fail("{}: tensor '{}' has no data source", path_, name);
  const uint64_t n_bytes = tensor_bytes(type, ne, fmt::format("{}: tensor '{}'", path_, name));
  tensor_index_[name] = tensors_.size();
  tensors_.push_back(TensorEntry{name, type, std::move(ne), n_bytes, std::move(source)});
}

uint64_t GgufWriter::write() {
  const uint64_t align = alignment();
  const std::string tmp = fmt::format("{}.tmp.{}", path_, ::getpid());
  std::vector<uint64_t> offsets;
  offsets.reserve(tensors_.size());
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    offsets.push_back(off);
    off += (t.n_bytes + align - 1) / align * align;
  }

  uint64_t size = 0;
  {
    FileOut out(path_, tmp);
    try {
      out.write("GGUF", 4);
      out.put<uint32_t>(options_.version);
      out.put<uint64_t>(tensors_.size());
      out.put<uint64_t>(kv_.size());
      for (const auto& [key, value] : kv_) {
        out.put_string(key);
        out.put(static_cast<uint32_t>(value.type));
        encode_value(out, value);
      }
      for (size_t i = 0; i < tensors_.size(); ++i) {
        const TensorEntry& t = tensors_[i];
        out.put_string(t.name);
        out.put(static_cast<uint32_t>(t.ne.size()));
        for (uint64_t d : t.ne) out.put(d);
        out.put(static_cast<uint32_t>(t.type));
        out.put(offsets[i]);
      }
      out.pad_to(align);
      const uint64_t data_start = out.pos();
      for (size_t i = 0; i < tensors_.size(); ++i) {
        const TensorEntry& t = tensors_[i];
        TensorSink sink(out, path_, t.name, t.n_bytes);
        try {
          t.source(sink);
        } catch (const std::exception& e) {
          // Errors of our own sink already name the file; anything else is given the file and tensor.
          if (std::string_view(e.what()).find(path_) != std::string_view::npos) throw;
          fail("{}: tensor '{}' source failed: {}", path_, t.name, e.what());
        }
        if (sink.written() != t.n_bytes)
          fail("{}: tensor '{}' source wrote {} bytes, expected {}", path_, t.name, sink.written(), t.n_bytes);
        out.pad_to(align);
        if (i + 1 < tensors_.size() && out.pos() - data_start != offsets[i + 1])
          fail("{}: internal error: tensor '{}' ends at the wrong offset", path_, t.name);
      }
      size = out.pos();
      out.finish();
      if (::rename(tmp.c_str(), path_.c_str()) != 0)
        fail("{}: cannot rename {} to it: {}", path_, tmp, std::strerror(errno));
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  return size;
}

}  // namespace lowbit
