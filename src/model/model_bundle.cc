// A Model as a single .lbt bundle (see docs/formats.md): the header holds the architecture, hyper-parameters,
// recipe and a table of weights (format, shape, which blobs); the blobs hold the source's metadata as a small
// GGUF (hyper-parameters, tokenizer, chat template — read back with the same code as a GGUF model), the norm
// vectors, and every weight in its runtime layout, 64-byte aligned, used in place from the mapping.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lowbit/bundle.h"
#include "lowbit/error.h"
#include "lowbit/gguf_writer.h"
#include "lowbit/mapped_file.h"
#include "model/model_loader.h"

namespace lowbit {

namespace {

using nlohmann::json;

const char* act_name(ActivationMode a) { return a == ActivationMode::DynamicInt8 ? "int8_dynamic" : "weight_only"; }

std::span<const uint8_t> bytes_of(const void* p, size_t n) { return {static_cast<const uint8_t*>(p), n}; }

// Adds a weight's blobs and returns its table entry.
json add_weight(BundleWriter& w, const std::string& name, const Weight& wt) {
  json e = {{"name", name}, {"rows", wt.rows}, {"cols", wt.cols}};
  if (!wt.is_packed) {
    if (wt.dense_tiled)  // a programming error, as below
      fail("tensor '{}' was rearranged into row tiles at load; load the model without row tiles to save it", name);
    e["format"] = "dense";
    e["dtype"] = weight_dtype_name(wt.dtype);
    w.add_blob(name + ".data", bytes_of(wt.dense, wt.bytes()));
    return e;
  }
  const PackedDesc& d = wt.packed.desc;
  if (!wt.packed.codes)  // a programming error: LoadOptions::row_tiles is for running, not for writing
    fail("tensor '{}' was rearranged into row tiles at load; load the model without row tiles to save it", name);
  e["format"] = "packed";
  e["bits"] = d.bits;
  e["group_size"] = d.group_size;
  e["has_zeros"] = d.has_zeros;
  e["activations"] = act_name(d.act);
  w.add_blob(name + ".codes", bytes_of(wt.packed.codes, d.code_bytes()));
  w.add_blob(name + ".scales", bytes_of(wt.packed.scales, d.scale_count() * 2));
  if (d.has_zeros) w.add_blob(name + ".mins", bytes_of(wt.packed.mins, d.scale_count() * 2));
  return e;
}

std::vector<uint8_t> metadata_as_gguf(const std::vector<std::pair<std::string, GgufValue>>& kv,
                                      const std::string& near_path) {
  const std::string tmp = fmt::format("{}.meta.{}.gguf", near_path, ::getpid());
  try {
    GgufWriter w(tmp);
    for (const auto& [k, v] : kv)
      if (k != "general.alignment") w.add_value(k, v);
    w.write();
    MappedFile f(tmp);
    std::vector<uint8_t> bytes(f.data(), f.data() + f.size());
    ::unlink(tmp.c_str());
    return bytes;
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

template <typename T>
T field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) fail("{}: '{}' is missing", where, key);
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail("{}: '{}' has the wrong type", where, key);
  }
}

}  // namespace

bool is_bundle_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint8_t magic[8] = {};
  f.read(reinterpret_cast<char*>(magic), 8);
  return f.gcount() == 8 && std::memcmp(magic, kBundleMagic, 8) == 0;
}

void Model::save_bundle(const std::string& path) const {
  BundleWriter w(path);
  const ModelConfig& c = config_;
  std::vector<uint8_t> meta = metadata_as_gguf(metadata_, path);
  w.add_blob("metadata.gguf", std::span<const uint8_t>(meta));
  json tensors = json::array();
  tensors.push_back(add_weight(w, "token_embd", token_embd_));
  if (!output_shares_embedding_) tensors.push_back(add_weight(w, "output", output_));
  w.add_blob("output_norm", bytes_of(output_norm_.data(), output_norm_.size() * 4));
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerWeights& L = layers_[i];
    const std::string p = fmt::format("blk.{}.", i);
    w.add_blob(p + "attn_norm", bytes_of(L.attn_norm.data(), L.attn_norm.size() * 4));
    w.add_blob(p + "ffn_norm", bytes_of(L.ffn_norm.data(), L.ffn_norm.size() * 4));
    tensors.push_back(add_weight(w, p + "wqkv", L.wqkv));
    tensors.push_back(add_weight(w, p + "wo", L.wo));
    tensors.push_back(add_weight(w, p + "w_gate_up", L.w_gate_up));
    tensors.push_back(add_weight(w, p + "w_down", L.w_down));
  }
  json header = {
      {"generator", "lowbit"},
      {"architecture", c.architecture},
      {"name", c.name},
      {"config",
       {{"n_layers", c.n_layers}, {"dim", c.dim}, {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads},
        {"head_dim", c.head_dim}, {"rope_dim", c.rope_dim}, {"ffn_dim", c.ffn_dim}, {"vocab_size", c.vocab_size},
        {"context_length", c.context_length}, {"rope_freq_base", c.rope_freq_base}, {"rms_eps", c.rms_eps},
        {"tied_output", c.tied_output}}},
      {"output_shares_embedding", output_shares_embedding_},
      {"recipe", recipe_json_.empty() ? json(nullptr) : json::parse(recipe_json_)},
      {"chat_template", c.chat_template},
      {"n_params", n_params_},
      {"tensors", tensors}};
  w.set_header(header);
  w.write();
}

namespace {

// A weight described by `e`, pointing into the bundle's blobs; every size is checked against its blob.
Weight weight_from_entry(const BundleFile& b, const json& e, size_t rows, size_t cols) {
  const std::string name = field<std::string>(e, "name", b.path() + ": tensor entry");
  const std::string where = fmt::format("{}: tensor '{}'", b.path(), name);
  Weight w;
  w.rows = field<size_t>(e, "rows", where);
  w.cols = field<size_t>(e, "cols", where);
  if (w.rows != rows || w.cols != cols)
    fail("{} is {}×{}, expected {}×{}", where, w.rows, w.cols, rows, cols);
  const std::string format = field<std::string>(e, "format", where);
  auto blob = [&](const std::string& suffix, size_t expect_bytes) {
    std::span<const uint8_t> s = b.blob(name + suffix);
    if (s.size() != expect_bytes)
      fail("{}: blob '{}{}' holds {} bytes, expected {}", b.path(), name, suffix, s.size(), expect_bytes);
    return s.data();
  };
  if (format == "dense") {
    w.dtype = parse_weight_dtype(field<std::string>(e, "dtype", where));
    w.dense = blob(".data", w.bytes());
    return w;
  }
  if (format != "packed") fail("{}: unknown format '{}'", where, format);
  PackedDesc d;
  d.rows = rows;
  d.cols = cols;
  d.bits = field<int>(e, "bits", where);
  d.group_size = field<size_t>(e, "group_size", where);
  d.has_zeros = field<bool>(e, "has_zeros", where);
  const std::string act = field<std::string>(e, "activations", where);
  if (act != "int8_dynamic" && act != "weight_only") fail("{}: unknown activations '{}'", where, act);
  d.act = act == "int8_dynamic" ? ActivationMode::DynamicInt8 : ActivationMode::WeightOnly;
  d.validate(where);
  w.is_packed = true;
  w.packed.desc = d;
  w.packed.codes = blob(".codes", d.code_bytes());
  w.packed.scales = reinterpret_cast<const uint16_t*>(blob(".scales", d.scale_count() * 2));
  if (d.has_zeros) w.packed.mins = reinterpret_cast<const uint16_t*>(blob(".mins", d.scale_count() * 2));
  return w;
}

void norm_from_blob(const BundleFile& b, const std::string& name, size_t n, AlignedBuffer<float>& out) {
  std::span<const uint8_t> s = b.blob(name);
  if (s.size() != n * 4) fail("{}: blob '{}' holds {} bytes, expected {}", b.path(), name, s.size(), n * 4);
  out.resize(n);
  std::memcpy(out.data(), s.data(), s.size());
}

}  // namespace

std::shared_ptr<Model> ModelLoader::from_bundle(const std::string& path) {
  auto bundle = std::make_shared<BundleFile>(path);
  const json& h = bundle->header();
  auto m = std::make_shared<Model>();
  m->path_ = path;
  m->file_bytes_ = bundle->file_size();
  m->mapping_ = bundle;
  std::span<const uint8_t> meta = bundle->blob("metadata.gguf");
  GgufFile g(path + ":metadata.gguf", meta.data(), meta.size(), bundle);
  m->config_ = ModelConfig::from_gguf(g);
  m->config_.tied_output = field<bool>(field<json>(h, "config", path), "tied_output", path + ": config");
  m->tokenizer_ = Tokenizer::from_gguf(g);
  m->metadata_ = g.metadata();
  const json recipe = h.contains("recipe") ? h["recipe"] : json(nullptr);
  m->recipe_json_ = recipe.is_null() ? "" : recipe.dump();
  m->output_shares_embedding_ = field<bool>(h, "output_shares_embedding", path);
  const ModelConfig& c = m->config_;
  if (m->tokenizer_->vocab_size() != c.vocab_size)
    fail("{}: the tokenizer has {} tokens but the model {}", path, m->tokenizer_->vocab_size(), c.vocab_size);

  std::map<std::string, const json*> table;
  const json tensors = field<json>(h, "tensors", path);
  if (!tensors.is_array()) fail("{}: 'tensors' must be an array", path);
  for (const json& e : tensors) table[field<std::string>(e, "name", path + ": tensor entry")] = &e;
  auto entry = [&](const std::string& name) -> const json& {
    auto it = table.find(name);
    if (it == table.end()) fail("{}: tensor '{}' is missing from the header", path, name);
    return *it->second;
  };
  const size_t D = c.dim, KV = c.kv_dim(), F = c.ffn_dim, V = c.vocab_size;
  m->token_embd_ = weight_from_entry(*bundle, entry("token_embd"), V, D);
  if (!m->output_shares_embedding_) m->output_ = weight_from_entry(*bundle, entry("output"), V, D);
  norm_from_blob(*bundle, "output_norm", D, m->output_norm_);
  m->layers_.resize(c.n_layers);
  for (size_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights& L = m->layers_[i];
    norm_from_blob(*bundle, p + "attn_norm", D, L.attn_norm);
    norm_from_blob(*bundle, p + "ffn_norm", D, L.ffn_norm);
    L.wqkv = weight_from_entry(*bundle, entry(p + "wqkv"), D + 2 * KV, D);
    L.wo = weight_from_entry(*bundle, entry(p + "wo"), D, D);
    L.w_gate_up = weight_from_entry(*bundle, entry(p + "w_gate_up"), 2 * F, D);
    L.w_down = weight_from_entry(*bundle, entry(p + "w_down"), D, F);
  }
  m->n_params_ = field<uint64_t>(h, "n_params", path);
  return m;
}

}  // namespace lowbit
