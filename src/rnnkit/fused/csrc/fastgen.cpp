// Token-by-token sampling from a recurrent language model, the loop of rnnkit.models.fastgen: per step,
// for B streams at once, the recurrent layers (LSTM, GRU or tanh/relu RNN), the output layer and the
// choice of the next token (greedy, or sampling with temperature / top-k / top-p), with no Python between
// steps. The reference twin is LanguageModel.generate (rnnkit.models.lm + rnnkit.models.decoding); the
// tests in tests/test_fastgen.py hold the two to the same tokens.
//
// Layout (prepared once in Python, float32, row-major):
//   table      (V, G*H)   layer 0's input projection of every token, W_ih emb[v] + b_ih: an embedding
//                         followed by a linear map is a table lookup
//   w_ih_t[l]  W_ih^T (H, G*H) of layer l >= 1 (entry 0 unused), packed as (G*H/64, H, 64), see small_gemm
//   b_ih[l]    its bias, zero-padded to a multiple of 64 (entry 0 unused: folded into the table)
//   w_hh_t[l]  W_hh^T packed likewise;  b_hh[l] padded likewise
//   w_out_t    the output layer W_out^T (H, V) packed likewise (a tied projection folded in), b_out padded
//   h, c       (L, B, H)  the state, updated in place (c: LSTM only); prev (B,) the last token, in place
//
// Sampling follows torch.multinomial on the softmax of the filtered logits, which on CPU draws
// q ~ Exp(1) per token (a (V,) exponential_ from the stream's generator) and takes argmax p / q. Drawing
// the same q from the same generator gives the same token as the Python path whenever the probabilities
// agree to rounding.
#include <torch/library.h>

#include <ATen/core/Generator.h>

#include <algorithm>
#include <numeric>

#include "common.h"

namespace rnnkit {
namespace {

constexpr int64_t kLSTM = 0, kGRU = 1, kRNN_TANH = 2, kRNN_RELU = 3;

// C (M x N) += A (M x K) W (K x N), W packed in panels of kPW columns: panel p holds W[:, p*kPW : (p+1)*kPW]
// as K rows of kPW floats (zero-padded), so the weights are read front to back. C's rows have a multiple
// of kPW columns (ldc), the padding unused. NR rows share each load of W (the weights stream from cache
// once per NR rows); NR x NP panels of accumulators stay in registers over the K loop.
constexpr int64_t kPW = 64;
constexpr int kVPP = kPW / kVW;  // vectors per panel row

template <int NR, int NP>
inline void panel_tile(int64_t K, const float* A, int64_t lda, const float* W, float* C, int64_t ldc) {
  constexpr int NV = NP * kVPP;
  vfloat acc[NR][NV];
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = VT<vfloat>::load(C + r * ldc + v * kVW);
  for (int64_t k = 0; k < K; ++k) {
    vfloat a[NR];
    for (int r = 0; r < NR; ++r) a[r] = VT<vfloat>::bcast(A[r * lda + k]);
    for (int pn = 0; pn < NP; ++pn) {
      const float* w = W + (pn * K + k) * kPW;
      for (int v = 0; v < kVPP; ++v) {
        const vfloat wv = VT<vfloat>::load(w + v * kVW);
        for (int r = 0; r < NR; ++r) acc[r][pn * kVPP + v] += a[r] * wv;
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < NV; ++v) VT<vfloat>::store(C + r * ldc + v * kVW, acc[r][v]);
}

template <int NR, int NP>
void rows_times(int64_t K, int64_t panels, const float* A, int64_t lda, const float* W, float* C, int64_t ldc) {
  int64_t p = 0;
  for (; p + NP <= panels; p += NP) panel_tile<NR, NP>(K, A, lda, W + p * K * kPW, C + p * kPW, ldc);
  for (; p < panels; ++p) panel_tile<NR, 1>(K, A, lda, W + p * K * kPW, C + p * kPW, ldc);
}

void small_gemm(int64_t M, int64_t K, int64_t panels, const float* A, int64_t lda, const float* W, float* C,
                int64_t ldc) {
  int64_t r = 0;
#if defined(__AVX512F__)  // 32 vector registers: up to 16 accumulators
  for (; r + 4 <= M; r += 4) rows_times<4, 1>(K, panels, A + r * lda, lda, W, C + r * ldc, ldc);
  for (; r + 2 <= M; r += 2) rows_times<2, 2>(K, panels, A + r * lda, lda, W, C + r * ldc, ldc);
  for (; r < M; ++r) rows_times<1, 2>(K, panels, A + r * lda, lda, W, C + r * ldc, ldc);
#else
  for (; r < M; ++r) rows_times<1, 1>(K, panels, A + r * lda, lda, W, C + r * ldc, ldc);
#endif
}

// every row of C (M x N) := bias (N,)
void fill_rows(int64_t M, int64_t N, const float* bias, float* C) {
  for (int64_t r = 0; r < M; ++r) std::memcpy(C + r * N, bias, sizeof(float) * N);
}

// one layer's elementwise step for row b: xp, rec (G*H) -> new h (and c)
void cell_row(int64_t cell, int64_t H, const float* xp, const float* rec, float* h, float* c) {
  if (cell == kLSTM) {
    // gates i, f, g, o (torch's order); c' = f c + i g, h' = o tanh(c')
    for_lanes<float>(H, [&]<typename V>(int64_t j) {
      using L = VT<V>;
      const V i = act_sigmoid(L::load(xp + j) + L::load(rec + j));
      const V f = act_sigmoid(L::load(xp + H + j) + L::load(rec + H + j));
      const V g = act_tanh(L::load(xp + 2 * H + j) + L::load(rec + 2 * H + j));
      const V o = act_sigmoid(L::load(xp + 3 * H + j) + L::load(rec + 3 * H + j));
      const V cn = f * L::load(c + j) + i * g;
      L::store(c + j, cn);
      L::store(h + j, o * act_tanh(cn));
    });
  } else if (cell == kGRU) {
    // gates r, z, n with the reset applied after the recurrent product (torch's form)
    for_lanes<float>(H, [&]<typename V>(int64_t j) {
      using L = VT<V>;
      const V r = act_sigmoid(L::load(xp + j) + L::load(rec + j));
      const V z = act_sigmoid(L::load(xp + H + j) + L::load(rec + H + j));
      const V n = act_tanh(L::load(xp + 2 * H + j) + r * L::load(rec + 2 * H + j));
      L::store(h + j, n + z * (L::load(h + j) - n));
    });
  } else {
    const bool relu = cell == kRNN_RELU;
    for (int64_t j = 0; j < H; ++j) {
      const float a = xp[j] + rec[j];
      h[j] = relu ? (a > 0.0f ? a : 0.0f) : ftanh(a);
    }
  }
}

// The next token from one row of logits x (V,); q (V,) the Exp(1) draws (unused when greedy).
// Mirrors rnnkit.models.decoding.sample_tokens: temperature scaling of the max-shifted scores, top-k
// (ties with the k-th kept), top-p on the probabilities sorted in decreasing order (a token is dropped when
// the ones before it reach p), then argmax of p / q over the kept tokens.
int64_t choose(const float* x, int64_t V, double temperature, int64_t top_k, double top_p, const float* q,
               std::vector<float>& z, std::vector<int64_t>& order) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (x[i] > x[best]) best = i;  // the first maximum, as torch.argmax
  if (temperature == 0.0) return best;
  const float m = x[best];
  const float t = static_cast<float>(temperature);
  z.resize(V);
  for (int64_t i = 0; i < V; ++i) z[i] = temperature == 1.0 ? x[i] - m : (x[i] - m) / t;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (top_k > 0 && top_k < V) {
    std::vector<float> tmp(z);
    std::nth_element(tmp.begin(), tmp.begin() + (top_k - 1), tmp.end(), std::greater<float>());
    const float kth = tmp[top_k - 1];
    for (int64_t i = 0; i < V; ++i)
      if (z[i] < kth) z[i] = neg_inf;
  }
  // unnormalised probabilities; z <= 0 with z = 0 at the maximum, so w_max = 1 and the sum is >= 1
  for (int64_t i = 0; i < V; ++i) z[i] = z[i] == neg_inf ? 0.0f : fexp(z[i]);
  if (top_p < 1.0) {
    double total = 0.0;
    for (int64_t i = 0; i < V; ++i) total += z[i];
    const float inv = static_cast<float>(1.0 / total);
    order.resize(V);
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
    const float p_cut = static_cast<float>(top_p);
    double cum = 0.0;  // torch's CPU cumsum accumulates floats in double
    for (int64_t idx : order) {
      const float p = z[idx] * inv;
      cum += p;
      if (static_cast<float>(cum) - p >= p_cut) z[idx] = 0.0f;
    }
  }
  int64_t pick = best;
  float top = -1.0f;
  for (int64_t i = 0; i < V; ++i) {
    if (z[i] == 0.0f) continue;
    const float ratio = z[i] / q[i];
    if (ratio > top) {
      top = ratio;
      pick = i;
    }
  }
  return pick;
}

Tensor fastgen_run(const Tensor& table, at::TensorList w_ih_t, at::TensorList b_ih, at::TensorList w_hh_t,
                   at::TensorList b_hh, const Tensor& w_out_t, const Tensor& b_out, int64_t cell, Tensor h,
                   const OptTensor& c_opt, Tensor prev, const Tensor& temperature_, const Tensor& top_k_,
                   const Tensor& top_p_, const c10::List<std::optional<at::Generator>>& gens, int64_t steps) {
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2);
  const int64_t V = table.size(0), GH = table.size(1);
  TORCH_CHECK(h.is_contiguous() && h.scalar_type() == at::kFloat, "fastgen: h must be contiguous float32");
  TORCH_CHECK(prev.is_contiguous() && prev.scalar_type() == at::kLong && prev.numel() == B,
              "fastgen: prev must be (B,) int64");
  TORCH_CHECK(static_cast<int64_t>(w_hh_t.size()) == L && static_cast<int64_t>(b_hh.size()) == L &&
                  static_cast<int64_t>(w_ih_t.size()) == L && static_cast<int64_t>(b_ih.size()) == L,
              "fastgen: one weight of each kind per layer");
  const int64_t Pg = (GH + kPW - 1) / kPW, Pv = (V + kPW - 1) / kPW;  // column panels
  const int64_t GHp = Pg * kPW, Vp = Pv * kPW;
  TORCH_CHECK(w_out_t.dim() == 3 && w_out_t.size(0) == Pv && w_out_t.size(1) == H && w_out_t.size(2) == kPW &&
                  b_out.numel() == Vp,
              "fastgen: the output layer must be packed (V / 64 panels, H, 64) with a padded bias");
  for (int64_t l = 0; l < L; ++l) {
    TORCH_CHECK(w_hh_t[l].dim() == 3 && w_hh_t[l].size(0) == Pg && w_hh_t[l].size(1) == H &&
                    b_hh[l].numel() == GHp && (l == 0 || (w_ih_t[l].sizes() == w_hh_t[l].sizes() &&
                                                          b_ih[l].numel() == GHp)),
                "fastgen: the recurrent weights must be packed (G*H / 64 panels, H, 64) with padded biases");
  }
  float* c = nullptr;
  if (cell == kLSTM) {
    TORCH_CHECK(c_opt.has_value() && c_opt->is_contiguous() && c_opt->sizes() == h.sizes(),
                "fastgen: an LSTM needs c shaped as h");
    c = c_opt->data_ptr<float>();
  }
  Tensor temperature = temperature_.to(at::kDouble).contiguous();
  Tensor top_k = top_k_.to(at::kLong).contiguous();
  Tensor top_p = top_p_.to(at::kDouble).contiguous();
  TORCH_CHECK(temperature.numel() == B && top_k.numel() == B && top_p.numel() == B,
              "fastgen: one temperature, top_k and top_p per stream");
  const double* temp = temperature.data_ptr<double>();
  const int64_t* kk = top_k.data_ptr<int64_t>();
  const double* pp = top_p.data_ptr<double>();
  TORCH_CHECK(static_cast<int64_t>(gens.size()) == B, "fastgen: one generator (or None) per stream");
  std::vector<std::optional<at::Generator>> gen(gens.begin(), gens.end());

  const auto opts = table.options();
  Tensor xp_t = at::empty({B, GHp}, opts), rec_t = at::empty({B, GHp}, opts);
  Tensor logits_t = at::empty({B, Vp}, opts);
  Tensor q_t = at::empty({V}, opts);
  Tensor out = at::empty({B, steps}, prev.options());
  float* xp = xp_t.data_ptr<float>();
  float* rec = rec_t.data_ptr<float>();
  float* logits = logits_t.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  int64_t* tok = prev.data_ptr<int64_t>();
  int64_t* outp = out.data_ptr<int64_t>();
  const float* tab = table.data_ptr<float>();
  std::vector<float> z;
  std::vector<int64_t> order;
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t l = 0; l < L; ++l) {
      float* hl = hp + l * B * H;
      if (l == 0) {
        for (int64_t b = 0; b < B; ++b) {
          TORCH_CHECK(tok[b] >= 0 && tok[b] < V, "fastgen: token id out of range");
          std::memcpy(xp + b * GHp, tab + tok[b] * GH, sizeof(float) * GH);
        }
      } else {
        fill_rows(B, GHp, b_ih[l].data_ptr<float>(), xp);
        small_gemm(B, H, Pg, hp + (l - 1) * B * H, H, w_ih_t[l].data_ptr<float>(), xp, GHp);
      }
      fill_rows(B, GHp, b_hh[l].data_ptr<float>(), rec);
      small_gemm(B, H, Pg, hl, H, w_hh_t[l].data_ptr<float>(), rec, GHp);
      for (int64_t b = 0; b < B; ++b)
        cell_row(cell, H, xp + b * GHp, rec + b * GHp, hl + b * H, c ? c + l * B * H + b * H : nullptr);
    }
    fill_rows(B, Vp, b_out.data_ptr<float>(), logits);
    small_gemm(B, H, Pv, hp + (L - 1) * B * H, H, w_out_t.data_ptr<float>(), logits, Vp);
    for (int64_t b = 0; b < B; ++b) {
      const float* q = nullptr;
      if (temp[b] != 0.0) {
        q_t.exponential_(1.0, gen[b]);  // what torch.multinomial draws for one sample from a (1, V) row
        q = q_t.data_ptr<float>();
      }
      tok[b] = choose(logits + b * Vp, V, temp[b], kk[b], pp[b], q, z, order);
      outp[b * steps + s] = tok[b];
    }
  }
  return out;
}

}  // namespace
}  // namespace rnnkit

TORCH_LIBRARY_FRAGMENT(rnnkit_fused, m) {
  m.def(
      "fastgen_run(Tensor table, Tensor[] w_ih_t, Tensor[] b_ih, Tensor[] w_hh_t, Tensor[] b_hh, Tensor w_out_t, "
      "Tensor b_out, int cell, Tensor(a!) h, Tensor(b!)? c, Tensor(c!) prev, Tensor temperature, Tensor top_k, "
      "Tensor top_p, Generator?[] gens, int steps) -> Tensor");
}

TORCH_LIBRARY_IMPL(rnnkit_fused, CPU, m) { m.impl("fastgen_run", &rnnkit::fastgen_run); }
