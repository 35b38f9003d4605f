// BundleFile: maps a .lbt bundle and checks every field before anything is used. The order of the checks matters:
// nothing is read before its bounds are known to lie inside the file, the version is checked before anything
// whose layout a later version might change, and the header checksum before the JSON is parsed.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "bundle/bundle_format.h"
#include "lowbit/bundle.h"
#include "lowbit/error.h"
#include "lowbit/mapped_file.h"

namespace lowbit {

using bundle_detail::printable_name;

namespace {

// Rejects JSON nested deeper than kBundleMaxJsonDepth before it is parsed: nlohmann parses iteratively, but
// copying, comparing or printing a value recurses, so a crafted header could otherwise overflow a caller's stack.
void check_json_depth(const std::string& path, const char* p, size_t n) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kBundleMaxJsonDepth)
        fail("{}: header JSON nests deeper than {} levels", path, kBundleMaxJsonDepth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; keep the rest, on one line.
std::string json_message(const std::exception& e) {
  std::string m = e.what();
  if (!m.empty() && m[0] == '[') {
    const size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  std::replace(m.begin(), m.end(), '\n', ' ');
  std::replace(m.begin(), m.end(), '\r', ' ');
  return m;
}

}  // namespace

struct BundleFile::Impl {
  explicit Impl(const std::string& path) : map(path) {}
  MappedFile map;
  uint32_t version = 0;
  nlohmann::json header;
  std::vector<BlobInfo> blobs;
  std::unordered_map<std::string, size_t> index;

  const std::string& path() const { return map.path(); }
  void open(bool verify_checksums);
  void parse_blobs(const nlohmann::json& arr, uint64_t header_end);
};

void BundleFile::Impl::open(bool verify_checksums) {
  const std::string& p = path();
  const uint8_t* d = map.data();
  const uint64_t size = map.size();

  // Magic: judged on whatever prefix exists, so a short file of another kind is "not a bundle", not "truncated".
  if (size == 0) fail("{}: not a lowbit bundle (empty file)", p);
  if (std::memcmp(d, kBundleMagic, std::min<uint64_t>(size, sizeof(kBundleMagic))) != 0)
    fail("{}: not a lowbit bundle (bad magic)", p);
  if (size < kBundleFixedHeaderBytes)
    fail("{}: truncated lowbit bundle ({} bytes, shorter than the {}-byte fixed header)", p, size,
         kBundleFixedHeaderBytes);

  version = bundle_detail::load_u32le(d + bundle_detail::kOffVersion);
  if (version == 0) fail("{}: bundle version 0 is invalid (versions start at 1)", p);
  if (version > kBundleVersion)
    fail("{}: bundle version {} is newer than this lowbit supports ({})", p, version, kBundleVersion);
  const uint32_t flags = bundle_detail::load_u32le(d + bundle_detail::kOffFlags);
  if (flags != 0) fail("{}: bundle flags 0x{:08x} are unknown (version {} defines none)", p, flags, version);

  const uint64_t header_len = bundle_detail::load_u64le(d + bundle_detail::kOffHeaderLength);
  if (header_len > size - kBundleFixedHeaderBytes)
    fail("{}: header length {} exceeds the file ({} bytes; truncated?)", p, header_len, size);
  const uint64_t header_end = kBundleFixedHeaderBytes + header_len;  // <= size, so no overflow
  const char* json_text = reinterpret_cast<const char*>(d + kBundleFixedHeaderBytes);
  if (XXH64(json_text, header_len, 0) != bundle_detail::load_u64le(d + bundle_detail::kOffHeaderChecksum))
    fail("{}: header checksum mismatch (corrupted file?)", p);

  check_json_depth(p, json_text, header_len);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text, json_text + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: header JSON: {}", p, json_message(e));
  }
  if (!j.is_object()) fail("{}: header JSON is {}, expected an object", p, j.type_name());
  const auto it = j.find("blobs");
  if (it == j.end()) fail("{}: header has no \"blobs\" array", p);
  if (!it->is_array()) fail("{}: header \"blobs\" is {}, expected an array", p, it->type_name());
  parse_blobs(*it, header_end);
  j.erase(it);
  header = std::move(j);

  // The file ends exactly where the last blob (or, without blobs, the padded header) ends.
  uint64_t end = bundle_detail::align_up(header_end);  // header_end <= size < 2^63 in practice; see parse_blobs
  for (const BlobInfo& b : blobs) end = std::max(end, b.offset + b.bytes);
  if (size < end) fail("{}: truncated lowbit bundle ({} bytes; its header and blobs end at {})", p, size, end);
  if (size > end) fail("{}: {} unexpected bytes after the end of the bundle (at {})", p, size - end, end);

  if (verify_checksums) {
    for (const BlobInfo& b : blobs) {
      if (XXH64(d + b.offset, b.bytes, 0) != b.xxh64)
        fail("{}: blob '{}' checksum mismatch (corrupted file?)", p, printable_name(b.name));
    }
  }
}

void BundleFile::Impl::parse_blobs(const nlohmann::json& arr, uint64_t header_end) {
  const std::string& p = path();
  const uint64_t size = map.size();
  blobs.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const nlohmann::json& e = arr[i];
    if (!e.is_object()) fail("{}: header blobs[{}] is {}, expected an object", p, i, e.type_name());
    auto field = [&](const char* key) -> const nlohmann::json& {
      const auto f = e.find(key);
      if (f == e.end()) fail("{}: header blobs[{}] has no \"{}\"", p, i, key);
      return *f;
    };
    const nlohmann::json& name = field("name");
    if (!name.is_string()) fail("{}: header blobs[{}].name is {}, expected a string", p, i, name.type_name());
    BlobInfo b;
    b.name = name.get<std::string>();
    if (b.name.empty()) fail("{}: header blobs[{}].name is empty", p, i);
    const std::string shown = printable_name(b.name);
    for (const char* key : {"offset", "bytes"}) {
      const nlohmann::json& v = field(key);
      if (!v.is_number_unsigned())
        fail("{}: blob '{}': \"{}\" is {}, expected an unsigned integer", p, shown, key,
             v.is_number_integer() ? "negative" : v.type_name());
      (key[0] == 'o' ? b.offset : b.bytes) = v.get<uint64_t>();
    }
    const nlohmann::json& sum = field("xxh64");
    if (!sum.is_string() || !bundle_detail::parse_checksum_hex(sum.get_ref<const std::string&>(), b.xxh64))
      fail("{}: blob '{}': \"xxh64\" is not a string of {} hex digits", p, shown, bundle_detail::kChecksumHexDigits);

    if (b.offset % kBundleAlignment != 0)
      fail("{}: blob '{}' offset {} is not a multiple of {}", p, shown, b.offset, kBundleAlignment);
    if (b.offset < header_end)
      fail("{}: blob '{}' offset {} is inside the header (which ends at {})", p, shown, b.offset, header_end);
    // Written so that it cannot overflow: offset + bytes <= size.
    if (b.offset > size || b.bytes > size - b.offset)
      fail("{}: blob '{}' (offset {}, {} bytes) extends past the end of the file ({} bytes; truncated?)", p, shown,
           b.offset, b.bytes, size);
    if (!index.emplace(b.name, blobs.size()).second)
      fail("{}: blob '{}' appears twice in the header", p, shown);
    blobs.push_back(std::move(b));
  }

  // No overlaps: sorted by offset, each blob must end at or before the next one starts. (Every range lies inside
  // the file by now, so the sums cannot overflow.)
  std::vector<const BlobInfo*> order;
  order.reserve(blobs.size());
  for (const BlobInfo& b : blobs) order.push_back(&b);
  std::sort(order.begin(), order.end(), [](const BlobInfo* a, const BlobInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->bytes < b->bytes;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i - 1]->offset + order[i - 1]->bytes > order[i]->offset)
      fail("{}: blobs '{}' and '{}' overlap", p, printable_name(order[i - 1]->name), printable_name(order[i]->name));
  }
}

BundleFile::BundleFile(std::string path, bool verify_checksums) : impl_(std::make_unique<Impl>(path)) {
  impl_->open(verify_checksums);
}
BundleFile::~BundleFile() = default;
BundleFile::BundleFile(BundleFile&&) noexcept = default;
BundleFile& BundleFile::operator=(BundleFile&&) noexcept = default;

const std::string& BundleFile::path() const { return impl_->path(); }
uint32_t BundleFile::version() const { return impl_->version; }
uint64_t BundleFile::file_size() const { return impl_->map.size(); }
const nlohmann::json& BundleFile::header() const { return impl_->header; }
const std::vector<BlobInfo>& BundleFile::blobs() const { return impl_->blobs; }
bool BundleFile::has_blob(const std::string& name) const { return impl_->index.count(name) != 0; }

const BlobInfo& BundleFile::blob_info(const std::string& name) const {
  const auto it = impl_->index.find(name);
  if (it == impl_->index.end()) fail("{}: no blob named '{}' in the bundle", impl_->path(), printable_name(name));
  return impl_->blobs[it->second];
}

std::span<const uint8_t> BundleFile::blob(const std::string& name) const {
  const BlobInfo& b = blob_info(name);
  return std::span<const uint8_t>(impl_->map.data() + b.offset, b.bytes);
}

}  // namespace lowbit
