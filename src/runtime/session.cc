#include "lowbit/session.h"

#include <algorithm>
#include <cstring>

#include "kernels/matmul_q/matmul_q.h"
#include "kernels/ops.h"
#include "lowbit/error.h"

namespace lowbit {

namespace {

void linear(ThreadPool& pool, const Weight& w, const float* x, size_t n, float* y) {
  if (w.is_packed) {
    kernels::matmul_q(pool, w.packed, x, n, y);
  } else if (n >= kernels::kBf16DotMinTokens && w.prefill_in_bf16()) {
    // 16-bit weights: prefill in bf16 × bf16 (activations, and f16 weights, rounded to bf16).
    kernels::matmul_bf16_dot(pool, w.dense_type(), reinterpret_cast<const uint16_t*>(w.dense), w.dense_layout(),
                             w.rows, w.cols, x, n, y);
  } else {
    kernels::matmul(pool, w.dense_type(), w.dense, w.rows, w.cols, x, n, y, w.dense_layout());
  }
}

}  // namespace

KvType parse_kv_type(const std::string& s) {
  if (s == "f32") return KvType::F32;
  if (s == "f16") return KvType::F16;
  if (s == "int8") return KvType::Int8;
  fail("--kv-type: '{}' is not a KV cache type (f32, f16, int8)", s);
}

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : model_(std::move(model)),
      n_ctx_(options.n_ctx),
      max_batch_(std::max<size_t>(1, options.max_batch)),
      pool_(options.threads > 0 ? options.threads : default_thread_count()),
      kv_type_(options.kv_type) {
  const ModelConfig& c = model_->config();
  if (n_ctx_ == 0) fail("--ctx must be positive");
  if (n_ctx_ > (size_t(1) << 22)) fail("--ctx {} is too large", n_ctx_);
  const size_t cache = c.n_layers * n_ctx_ * c.kv_dim();
  if (kv_type_ == KvType::F16) {
    k16_.resize(cache);
    v16_.resize(cache);
  } else if (kv_type_ == KvType::Int8) {
    k8_.resize(cache);
    v8_.resize(cache);
    k_scale_.resize(cache / c.head_dim);
    v_scale_.resize(cache / c.head_dim);
  } else {
    k_cache_.resize(cache);
    v_cache_.resize(cache);
  }
  logits_.resize(c.vocab_size);
}

void Session::ensure_scratch(size_t n) {
  if (n <= scratch_tokens_) return;
  const ModelConfig& c = model_->config();
  x_.resize(n * c.dim);
  xb_.resize(n * c.dim);
  qkv_.resize(n * (c.dim + 2 * c.kv_dim()));
  q_.resize(n * c.dim);
  att_.resize(n * c.dim);
  ffn_.resize(n * 2 * c.ffn_dim);
  ffn_out_.resize(n * std::max(c.ffn_dim, c.dim));
  scratch_tokens_ = n;
}

void Session::truncate(size_t n) {
  if (n > n_past_) fail("cannot truncate the session to {} tokens: it holds {}", n, n_past_);
  n_past_ = n;
}

const float* Session::prefill(const std::vector<int32_t>& tokens, bool all_logits) {
  if (tokens.empty()) fail("prefill: no tokens");
  if (n_past_ + tokens.size() > n_ctx_)
    fail("the prompt ({} tokens{}) does not fit in the context of {} tokens (raise --ctx)", tokens.size(),
         n_past_ ? fmt::format(" after {} already in the context", n_past_) : "", n_ctx_);
  const size_t V = model_->config().vocab_size;
  for (int32_t t : tokens)
    if (t < 0 || static_cast<size_t>(t) >= V) fail("token id {} is outside the vocabulary (0..{})", t, V - 1);
  if (all_logits) all_logits_.resize(tokens.size() * V);
  for (size_t i = 0; i < tokens.size(); i += max_batch_) {
    size_t n = std::min(max_batch_, tokens.size() - i);
    forward(tokens.data() + i, n, all_logits, all_logits ? all_logits_.data() + i * V : logits_.data());
  }
  return all_logits ? all_logits_.data() : logits_.data();
}

const float* Session::decode(int32_t token) { return prefill({token}, false); }

void Session::forward(const int32_t* tokens, size_t n, bool all_logits, float* logits_out) {
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  const size_t D = c.dim, KV = c.kv_dim(), F = c.ffn_dim, HD = c.head_dim;
  const size_t QKV = D + 2 * KV;
  ensure_scratch(n);
  float* x = x_.data();
  float* xb = xb_.data();

  for (size_t t = 0; t < n; ++t) m.token_embedding().row_to_f32(tokens[t], x + t * D);

  for (size_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = m.layer(l);
    const size_t layer_off = l * n_ctx_ * KV;
    const size_t scale_off = l * n_ctx_ * c.n_kv_heads;  // int8 scales: [layer][kv head][pos]

    // Attention block: q, k, v from one stacked matmul; k and v go straight into the cache.
    for (size_t t = 0; t < n; ++t) kernels::rmsnorm(x + t * D, L.attn_norm.data(), xb + t * D, D, c.rms_eps);
    linear(pool_, L.wqkv, xb, n, qkv_.data());
    for (size_t t = 0; t < n; ++t) {
      const size_t pos = n_past_ + t;
      float* row = qkv_.data() + t * QKV;
      kernels::rope(row, c.n_heads, HD, c.rope_dim, pos, c.rope_freq_base);
      kernels::rope(row + D, c.n_kv_heads, HD, c.rope_dim, pos, c.rope_freq_base);
      std::memcpy(q_.data() + t * D, row, D * sizeof(float));
      // Head-major cache: [kv head][pos][head_dim] per layer.
      for (size_t g = 0; g < c.n_kv_heads; ++g) {
        const size_t at = layer_off + (g * n_ctx_ + pos) * HD;
        const float* kr = row + D + g * HD;
        const float* vr = row + D + KV + g * HD;
        switch (kv_type_) {
          case KvType::F16:
            kernels::f32_to_f16(kr, k16_.data() + at, HD);
            kernels::f32_to_f16(vr, v16_.data() + at, HD);
            break;
          case KvType::Int8: {
            const size_t si = scale_off + g * n_ctx_ + pos;
            k_scale_[si] = kernels::quantize_kv_int8(kr, HD, k8_.data() + at);
            v_scale_[si] = kernels::quantize_kv_int8(vr, HD, v8_.data() + at);
            break;
          }
          case KvType::F32:
            std::memcpy(k_cache_.data() + at, kr, HD * sizeof(float));
            std::memcpy(v_cache_.data() + at, vr, HD * sizeof(float));
            break;
        }
      }
    }
    const size_t head_stride = n_ctx_ * HD;
    switch (kv_type_) {
      case KvType::F16:
        kernels::attention(pool_, q_.data(), n, n_past_, k16_.data() + layer_off, v16_.data() + layer_off, HD,
                           c.n_heads, c.n_kv_heads, HD, att_.data(), head_stride);
        break;
      case KvType::Int8: {
        const kernels::KVCacheScales sc{k_scale_.data() + scale_off, v_scale_.data() + scale_off, 1, n_ctx_};
        kernels::attention(pool_, q_.data(), n, n_past_, k8_.data() + layer_off, v8_.data() + layer_off, sc, HD,
                           c.n_heads, c.n_kv_heads, HD, att_.data(), head_stride);
        break;
      }
      case KvType::F32:
        kernels::attention(pool_, q_.data(), n, n_past_, k_cache_.data() + layer_off, v_cache_.data() + layer_off, HD,
                           c.n_heads, c.n_kv_heads, HD, att_.data(), head_stride);
        break;
    }
    linear(pool_, L.wo, att_.data(), n, xb);
    for (size_t i = 0; i < n * D; ++i) x[i] += xb[i];

    // Feed-forward block (SwiGLU): gate and up from one stacked matmul.
    for (size_t t = 0; t < n; ++t) kernels::rmsnorm(x + t * D, L.ffn_norm.data(), xb + t * D, D, c.rms_eps);
    linear(pool_, L.w_gate_up, xb, n, ffn_.data());
    for (size_t t = 0; t < n; ++t)
      kernels::swiglu(ffn_.data() + t * 2 * F, ffn_.data() + t * 2 * F + F, ffn_out_.data() + t * F, F);
    linear(pool_, L.w_down, ffn_out_.data(), n, xb);
    for (size_t i = 0; i < n * D; ++i) x[i] += xb[i];
  }

  // Output: only the last token's logits unless all are wanted.
  const size_t first = all_logits ? 0 : n - 1;
  const size_t n_out = n - first;
  for (size_t t = first; t < n; ++t) kernels::rmsnorm(x + t * D, m.output_norm().data(), xb + (t - first) * D, D, c.rms_eps);
  linear(pool_, m.output(), xb, n_out, logits_out);
  n_past_ += n;
}

}  // namespace lowbit
