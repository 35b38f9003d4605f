// BundleWriter: one sequential pass over the blobs, checksums computed as they stream.
//
// The header (with every blob's offset and checksum) comes before the blobs, but checksums are only known after
// streaming. The header's length, though, is known in advance: offsets follow from the blob sizes, and a checksum
// is always 16 hex digits. So write() first settles the layout (the data start depends on the header length,
// which depends on the offsets' digits, which depend on the data start — a fixed point reached in 1-3 rounds),
// then writes zeros over the header area, streams the blobs to their offsets, and finally writes the fixed header
// and the JSON into the reserved area (pwrite at offset 0). The JSON must come out exactly as long as planned;
// anything else is an internal error.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "bundle/bundle_format.h"
#include "lowbit/bundle.h"
#include "lowbit/error.h"

namespace lowbit {

using bundle_detail::align_up;
using bundle_detail::printable_name;

namespace {

// Sizes beyond this are rejected so that no offset arithmetic can overflow (and no real file is this large).
constexpr uint64_t kMaxTotalBytes = uint64_t(1) << 62;

// Buffered output to the temporary file. Errors name the final path (the one the user asked for).
class FileOut {
 public:
  FileOut(const std::string& path, const std::string& tmp) : path_(path), tmp_(tmp), buf_(kBufSize) {
    fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno));
  }
  ~FileOut() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileOut(const FileOut&) = delete;
  FileOut& operator=(const FileOut&) = delete;

  uint64_t pos() const { return pos_; }

  void write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    pos_ += n;
    if (used_ + n <= buf_.size()) {
      if (n > 0) std::memcpy(buf_.data() + used_, p, n);
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
  void zeros(uint64_t n) {
    static const uint8_t kZeros[4096] = {};
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof(kZeros)));
      write(kZeros, k);
      n -= k;
    }
  }
  void pad_to(uint64_t offset) {
    if (offset < pos_) fail("{}: internal error: bundle layout goes backwards ({} < {})", path_, offset, pos_);
    zeros(offset - pos_);
  }
  // Overwrite already-written bytes (the reserved header area).
  void write_at(uint64_t offset, const void* data, size_t n) {
    flush();
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("{}: cannot write {}: {}", path_, tmp_, std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
  }
  void finish() {
    flush();
    // No fsync: the rename already guarantees readers never see a partial file (as GgufWriter).
    const int fd = fd_;
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

// Forwards one blob's bytes to the file, hashing them and refusing more than the blob holds.
class HashingSink : public BlobSink {
 public:
  HashingSink(FileOut& out, const std::string& path, const std::string& name, uint64_t expected)
      : out_(out), path_(path), name_(name), expected_(expected) {}
  void write(const void* data, size_t n) override {
    if (n > expected_ - written_)
      fail("{}: blob '{}' producer wrote more than its {} bytes", path_, printable_name(name_), expected_);
    if (n == 0) return;
    out_.write(data, n);
    hash_.update(data, n);
    written_ += n;
  }
  uint64_t written() const { return written_; }
  uint64_t digest() const { return hash_.digest(); }

 private:
  FileOut& out_;
  const std::string& path_;
  const std::string& name_;
  uint64_t expected_;
  uint64_t written_ = 0;
  bundle_detail::Xxh64 hash_;
};

// Throws unless the JSON value serializes (nlohmann rejects strings that are not valid UTF-8).
void check_serializable(const std::string& path, const nlohmann::json& j, const std::string& what) {
  try {
    (void)j.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {} cannot be written as JSON: {}", path, what, e.what());
  }
}

}  // namespace

struct BundleWriter::Impl {
  struct Blob {
    std::string name;
    uint64_t bytes = 0;
    std::span<const uint8_t> view;                   // borrowed, or a view of `owned`
    std::shared_ptr<const std::vector<uint8_t>> owned;
    std::function<void(BlobSink&)> produce;          // set for streamed blobs
  };
  nlohmann::json meta = nlohmann::json::object();
  std::vector<Blob> blobs;
  std::unordered_set<std::string> names;
  uint64_t total_bytes = 0;

  void add(const std::string& path, Blob b) {
    if (b.name.empty()) fail("{}: blob name is empty", path);
    if (names.count(b.name)) fail("{}: blob '{}' added twice", path, printable_name(b.name));
    check_serializable(path, nlohmann::json(b.name), fmt::format("blob name '{}'", printable_name(b.name)));
    if (b.bytes > kMaxTotalBytes - total_bytes)
      fail("{}: blob '{}' ({} bytes) makes the bundle too large", path, printable_name(b.name), b.bytes);
    total_bytes += b.bytes;
    names.insert(b.name);
    blobs.push_back(std::move(b));
  }

  // The complete JSON header for these offsets and checksums (as 16 hex digits each).
  std::string header_json(const std::vector<uint64_t>& offsets, const std::vector<uint64_t>& checksums) const {
    nlohmann::json h = meta;
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < blobs.size(); ++i) {
      arr.push_back({{"name", blobs[i].name},
                     {"offset", offsets[i]},
                     {"bytes", blobs[i].bytes},
                     {"xxh64", bundle_detail::checksum_hex(checksums[i])}});
    }
    h["blobs"] = std::move(arr);
    return h.dump();
  }
};

BundleWriter::BundleWriter(std::string path) : path_(std::move(path)), impl_(std::make_unique<Impl>()) {}
BundleWriter::~BundleWriter() = default;
BundleWriter::BundleWriter(BundleWriter&&) noexcept = default;
BundleWriter& BundleWriter::operator=(BundleWriter&&) noexcept = default;

void BundleWriter::set_header(nlohmann::json meta) {
  if (!meta.is_object()) fail("{}: bundle header must be a JSON object, not {}", path_, meta.type_name());
  if (meta.contains("blobs")) fail("{}: bundle header must not contain the key \"blobs\" (the writer adds it)", path_);
  check_serializable(path_, meta, "bundle header");
  impl_->meta = std::move(meta);
}

void BundleWriter::add_blob(std::string name, std::span<const uint8_t> bytes) {
  Impl::Blob b;
  b.name = std::move(name);
  b.bytes = bytes.size();
  b.view = bytes;
  impl_->add(path_, std::move(b));
}

void BundleWriter::add_blob(std::string name, std::vector<uint8_t>&& bytes) {
  Impl::Blob b;
  b.name = std::move(name);
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  b.bytes = owned->size();
  b.view = std::span<const uint8_t>(owned->data(), owned->size());
  b.owned = std::move(owned);
  impl_->add(path_, std::move(b));
}

void BundleWriter::add_blob_stream(std::string name, uint64_t bytes, std::function<void(BlobSink&)> produce) {
  if (!produce) fail("{}: blob '{}' has no producer", path_, printable_name(name));
  Impl::Blob b;
  b.name = std::move(name);
  b.bytes = bytes;
  b.produce = std::move(produce);
  impl_->add(path_, std::move(b));
}

size_t BundleWriter::blob_count() const { return impl_->blobs.size(); }

uint64_t BundleWriter::write() {
  const Impl& im = *impl_;
  const size_t n = im.blobs.size();

  // Offsets relative to the data start: each blob at the next multiple of the alignment. kMaxTotalBytes keeps
  // this (and everything below) far from overflowing.
  std::vector<uint64_t> rel(n);
  uint64_t r = 0;
  for (size_t i = 0; i < n; ++i) {
    rel[i] = r;
    r = align_up(r + im.blobs[i].bytes);
  }
  const std::vector<uint64_t> placeholder(n, 0);
  std::vector<uint64_t> offsets(n);
  auto layout = [&](uint64_t data_start) {
    for (size_t i = 0; i < n; ++i) offsets[i] = data_start + rel[i];
    return im.header_json(offsets, placeholder).size();
  };
  // Fixed point: data_start = align_up(32 + len(json with offsets from data_start)). Starting from the smallest
  // possible value, each round can only grow it, and the JSON grows only by a few digits, so this ends quickly.
  uint64_t data_start = kBundleAlignment;
  uint64_t header_len = 0;
  for (int round = 0;; ++round) {
    if (round == 16) fail("{}: internal error: bundle header layout does not settle", path_);
    header_len = layout(data_start);
    const uint64_t need = align_up(kBundleFixedHeaderBytes + header_len);
    if (need == data_start) break;
    if (need < data_start) fail("{}: internal error: bundle header layout shrank", path_);  // see above
    data_start = need;
  }

  const std::string tmp = fmt::format("{}.tmp.{}", path_, ::getpid());
  uint64_t size = 0;
  {
    FileOut out(path_, tmp);
    try {
      out.zeros(data_start);  // the reserved header area; filled in at the end
      std::vector<uint64_t> checksums(n);
      for (size_t i = 0; i < n; ++i) {
        const Impl::Blob& b = im.blobs[i];
        out.pad_to(offsets[i]);
        HashingSink sink(out, path_, b.name, b.bytes);
        if (b.produce) {
          try {
            b.produce(sink);
          } catch (const std::exception& e) {
            // Errors of our own sink already name the file; anything else is given the file and blob.
            if (std::string_view(e.what()).find(path_) != std::string_view::npos) throw;
            fail("{}: blob '{}' producer failed: {}", path_, printable_name(b.name), e.what());
          }
        } else {
          sink.write(b.view.data(), b.view.size());
        }
        if (sink.written() != b.bytes)
          fail("{}: blob '{}' producer wrote {} bytes, expected {}", path_, printable_name(b.name), sink.written(),
               b.bytes);
        checksums[i] = sink.digest();
      }
      size = out.pos();

      const std::string json = im.header_json(offsets, checksums);
      if (json.size() != header_len)
        fail("{}: internal error: bundle header is {} bytes, {} were reserved", path_, json.size(), header_len);
      std::vector<uint8_t> head(kBundleFixedHeaderBytes + json.size());
      std::memcpy(head.data() + bundle_detail::kOffMagic, kBundleMagic, sizeof(kBundleMagic));
      bundle_detail::store_u32le(head.data() + bundle_detail::kOffVersion, kBundleVersion);
      bundle_detail::store_u32le(head.data() + bundle_detail::kOffFlags, 0);
      bundle_detail::store_u64le(head.data() + bundle_detail::kOffHeaderLength, json.size());
      bundle_detail::store_u64le(head.data() + bundle_detail::kOffHeaderChecksum,
                                 XXH64(json.data(), json.size(), 0));
      std::memcpy(head.data() + kBundleFixedHeaderBytes, json.data(), json.size());
      out.write_at(0, head.data(), head.size());
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
