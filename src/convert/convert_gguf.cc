#include "convert/convert_gguf.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "io/dequantize.h"
#include "io/encoded_rows.h"
#include "io/ggml_quants.h"
#include "lowbit/error.h"
#include "lowbit/gguf_writer.h"
#include "lowbit/model.h"
#include "model/model_loader.h"

namespace lowbit {

namespace {

// One output tensor: its shape and where its fp32 rows come from.
struct RowSource {
  std::string name;
  std::vector<uint64_t> ne;  // fastest first
  std::function<void(size_t row0, size_t n, float* out)> rows;
};

std::vector<RowSource> gguf_sources(const GgufFile& g) {
  std::vector<RowSource> out;
  for (const GgufTensor& t : g.tensors())
    out.push_back({t.name, t.ne, [&t](size_t r0, size_t n, float* y) { dequantize_rows(t, r0, n, y); }});
  return out;
}

RowSource weight_rows(const std::string& name, const Weight& w, size_t row0, size_t rows) {
  return {name, {w.cols, rows}, [&w, row0](size_t r0, size_t n, float* y) {
            for (size_t i = 0; i < n; ++i) w.row_to_f32(row0 + r0 + i, y + i * w.cols);
          }};
}

RowSource norm_rows(const std::string& name, const AlignedBuffer<float>& v) {
  return {name, {v.size()}, [&v](size_t, size_t, float* y) { std::copy(v.data(), v.data() + v.size(), y); }};
}

std::vector<RowSource> model_sources(const Model& m) {
  const ModelConfig& c = m.config();
  std::vector<RowSource> out;
  out.push_back(weight_rows("token_embd.weight", m.token_embedding(), 0, c.vocab_size));
  for (size_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = m.layer(l);
    const std::string b = "blk." + std::to_string(l) + ".";
    out.push_back(norm_rows(b + "attn_norm.weight", L.attn_norm));
    out.push_back(weight_rows(b + "attn_q.weight", L.wqkv, 0, c.dim));
    out.push_back(weight_rows(b + "attn_k.weight", L.wqkv, c.dim, c.kv_dim()));
    out.push_back(weight_rows(b + "attn_v.weight", L.wqkv, c.dim + c.kv_dim(), c.kv_dim()));
    out.push_back(weight_rows(b + "attn_output.weight", L.wo, 0, c.dim));
    out.push_back(norm_rows(b + "ffn_norm.weight", L.ffn_norm));
    out.push_back(weight_rows(b + "ffn_gate.weight", L.w_gate_up, 0, c.ffn_dim));
    out.push_back(weight_rows(b + "ffn_up.weight", L.w_gate_up, c.ffn_dim, c.ffn_dim));
    out.push_back(weight_rows(b + "ffn_down.weight", L.w_down, 0, c.dim));
  }
  out.push_back(norm_rows("output_norm.weight", m.output_norm()));
  if (!c.tied_output) out.push_back(weight_rows("output.weight", m.output(), 0, c.vocab_size));
  return out;
}

bool skip_key(const std::string& k) {
  return k == "general.file_type" || k == "general.alignment" || k == "general.quantization_version";
}

}  // namespace

uint64_t convert_to_gguf(const std::string& in, const std::string& out, GgmlType type, ThreadPool& pool) {
  const uint32_t ftype = llama_ftype_for_writing(type);
  GgufWriter w(out);
  std::unique_ptr<GgufFile> gguf;
  std::shared_ptr<Model> model;
  std::vector<RowSource> sources;
  if (is_bundle_file(in)) {
    model = Model::load(in);
    for (const auto& [k, v] : model->metadata())
      if (!skip_key(k)) w.add_value(k, v);
    sources = model_sources(*model);
  } else {
    gguf = std::make_unique<GgufFile>(in);
    w.copy_metadata(*gguf, [](const std::string& k) { return !skip_key(k); });
    sources = gguf_sources(*gguf);
  }
  w.add_uint32("general.file_type", ftype);
  const bool quantized = type == GgmlType::Q4_0 || type == GgmlType::Q8_0;
  if (quantized) w.add_uint32("general.quantization_version", 2);

  for (const RowSource& src : sources) {
    const uint64_t row = src.ne[0];
    uint64_t rows = 1;
    for (size_t i = 1; i < src.ne.size(); ++i) rows *= src.ne[i];
    const GgmlType t = src.ne.size() == 1 || (quantized && row % 32 != 0) ? GgmlType::F32 : type;
    w.add_tensor(src.name, t, src.ne, encoded_rows_source(pool, t, row, rows, src.rows));
  }
  return w.write();
}

}  // namespace lowbit
