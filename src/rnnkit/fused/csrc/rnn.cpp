// Fused Elman RNN (tanh, relu, sigmoid) and the linear recurrences of MinGRU / MinLSTM.
//
// RNN, per step: one GEMM h_in W_hh^T and one elementwise pass. Saved for backward per step and batch
// row: h (H), plus the activation output (H) only when zoneout mixes it with the old state (otherwise the
// state is the activation wherever its gradient is not zero). The derivative of each activation is a
// function of its output.
//
// MinGRU / MinLSTM (Feng et al. 2024): h_t = a_t * h_{t-1} + b_t with a, b from the input projection
// only. On a CPU the work-optimal form of this scan is the sequential one, run for all (batch, unit)
// channels in parallel: O(T B H) work, no log-space detour. Saved: h (H); the gates are recomputed.
#include "common.h"

namespace rnnkit {
namespace {

enum Act : int64_t { kTanh = 0, kRelu = 1, kSigmoid = 2 };

template <typename T>
inline void rnn_act_row(const T* x, const T* r, const T* b, T* out, int64_t H, int64_t act) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V v = X::load(x + j) + X::load(r + j) + X::load(b + j);
    if (act == kTanh) X::store(out + j, act_tanh(v));
    else if (act == kSigmoid) X::store(out + j, act_sigmoid(v));
    else X::store(out + j, vmax(X::bcast(T(0)), v));  // relu; a NaN stays NaN
  });
}

// d pre-activation from d output and the output
template <typename T>
inline void rnn_dact_row(const T* d, const T* a, T* out, int64_t H, int64_t act) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V g = X::load(d + j), y = X::load(a + j);
    if (act == kTanh) X::store(out + j, g * (T(1) - y * y));
    else if (act == kSigmoid) X::store(out + j, g * y * (T(1) - y));
    else X::store(out + j, y > X::bcast(T(0)) ? g : X::bcast(T(0)));
  });
}

template <typename T>
std::vector<Tensor> rnn_forward_impl(const Tensor& xp, const Tensor& h0, const Tensor& w_hh, const T* bhh,
                                     int64_t act, const OptTensor& mask, const OptTensor& rec_mask,
                                     const Keep<T>& kh, bool reverse, bool save) {
  const int64_t T_ = xp.size(0), B = xp.size(1), H = h0.size(1);
  auto opts = xp.options();
  auto none = at::empty({0}, opts);
  const bool separate = !kh.identity();  // zoneout: keep the activations apart from the states
  Tensor hs = pooled_empty({T_, B, H}, opts);
  Tensor acts = separate ? pooled_empty({save ? T_ : 1, B, H}, opts) : none;
  Tensor rec = at::empty({B, H}, opts);
  Tensor hin_buf = rec_mask.has_value() ? at::empty({B, H}, opts) : Tensor();
  const T* xpp = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* whh = w_hh.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* ap = separate ? acts.data_ptr<T>() : hsp;
  T* recp = rec.data_ptr<T>();
  const T* rm = opt_ptr<T>(rec_mask);
  T* hinb = rec_mask.has_value() ? hin_buf.data_ptr<T>() : nullptr;
  RhsMatrix<T> wt;  // W_hh^T
  wt.init(whh, H, true, H, H);
  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    const int64_t tp = reverse ? t + 1 : t - 1;
    const T* hp = s == 0 ? h0p : hsp + tp * B * H;
    if (s + 1 < T_) prefetch_block(xpp + (reverse ? t - 1 : t + 1) * B * H, B * H);
    const T* hin = hp;
    if (rm != nullptr) {
      for (int64_t k = 0; k < B * H; ++k) hinb[k] = hp[k] * rm[k];
      hin = hinb;
    }
    wt.mul(B, hin, H, recp, H, false);  // (B, H)
    for_rows(B, 8 * H, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        T* a = separate ? ap + (save ? row : b) * H : hsp + row * H;
        rnn_act_row<T>(xpp + row * H, recp + b * H, bhh, a, H, act);
        kh.forward(t, b, a, hp + b * H, hsp + row * H);
      }
    });
  }
  const int64_t last = reverse ? 0 : T_ - 1;
  Tensor h_n = hs.select(0, last).clone();
  Tensor y = mask.has_value() ? hs * mask->unsqueeze(-1).to(hs.scalar_type()) : hs;
  if (!save) return {y, h_n, none, none};
  return {y, h_n, hs, acts};
}

template <typename T>
std::vector<Tensor> rnn_backward_impl(const Tensor& dy, const Tensor& dh_n, const Tensor& h0, const Tensor& w_hh,
                                      bool bias, int64_t act, const OptTensor& mask, const OptTensor& rec_mask,
                                      const Keep<T>& kh, bool reverse, const Tensor& hs, const Tensor& acts) {
  const int64_t T_ = hs.size(0), B = hs.size(1), H = hs.size(2);
  auto opts = hs.options();
  Tensor dxp = pooled_empty({T_, B, H}, opts);
  Tensor dh = dh_n.clone();
  Tensor dcand = at::empty({B, H}, opts);
  Tensor dhin = rec_mask.has_value() ? at::empty({B, H}, opts) : Tensor();
  const T* dyp = dy.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* whh = w_hh.data_ptr<T>();
  const T* hsp = hs.data_ptr<T>();
  const T* ap = acts.numel() > 0 ? acts.data_ptr<T>() : hsp;
  T* dxpp = dxp.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dcand.data_ptr<T>();
  const T* rm = opt_ptr<T>(rec_mask);
  T* dhinp = rec_mask.has_value() ? dhin.data_ptr<T>() : nullptr;
  const uint8_t* mk = mask_ptr(mask);
  RhsMatrix<T> wm;  // W_hh
  wm.init(whh, H, false, H, H);
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    for_rows(B, 4 * H, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        T* d = dhp + b * H;
        const T* g = dyp + row * H;
        if (mk == nullptr || mk[row]) {
          for (int64_t j = 0; j < H; ++j) d[j] += g[j];
        }
        kh.backward(t, b, d, dcp + b * H, d);
        rnn_dact_row<T>(dcp + b * H, ap + row * H, dxpp + row * H, H, act);
      }
    });
    const T* dx_t = dxpp + t * B * H;
    if (rm != nullptr) {
      wm.mul(B, dx_t, H, dhinp, H, false);
      for (int64_t k = 0; k < B * H; ++k) dhp[k] += dhinp[k] * rm[k];
    } else {
      wm.mul(B, dx_t, H, dhp, H, true);
    }
  }
  Tensor dw_hh = at::empty({H, H}, opts);
  T* dwp = dw_hh.data_ptr<T>();
  const int64_t TB = T_ * B;
  recurrent_weight_grad<T>(H, H, T_, B, dxpp, H, h0p, hsp, rm, reverse, dwp, opts);
  Tensor db_hh = at::empty({0}, opts);
  if (bias) {
    db_hh = at::empty({H}, opts);
    colsum<T>(dxpp, TB, H, H, db_hh.data_ptr<T>());
  }
  return {dxp, dh, dw_hh, db_hh};
}

// ---- MinGRU / MinLSTM ------------------------------------------------------------------------------------
// g of Feng et al.: x + 0.5 for x >= 0, sigmoid(x) otherwise; and its derivative
template <typename V, typename T>
inline V min_g(V x) {
  return x >= VT<V>::bcast(T(0)) ? x + T(0.5) : act_sigmoid(x);
}
template <typename V, typename T>
inline V min_dg(V x) {
  const V s = act_sigmoid(x);
  return x >= VT<V>::bcast(T(0)) ? VT<V>::bcast(T(1)) : s * (T(1) - s);
}
template <typename T>
inline T softplus(T x) {  // log(1 + e^x), stable
  return (x > T(0) ? x : T(0)) + std::log1p(act_exp(-std::abs(x)));
}

// h = a * h_prev + c for one row; KIND 0 MinGRU (k = [k_z, k_h]), 1 MinLSTM (k = [k_f, k_i, k_h])
template <typename T, int KIND>
inline void min_fwd_row(const T* k, const T* hp, T* out, int64_t H) {
  if constexpr (KIND == 0) {
    for_lanes<T>(H, [&]<typename V>(int64_t j) {
      using X = VT<V>;
      const V z = act_sigmoid(X::load(k + j));
      X::store(out + j, (T(1) - z) * X::load(hp + j) + z * min_g<V, T>(X::load(k + H + j)));
    });
  } else {  // softplus needs log1p: one lane at a time
    for (int64_t j = 0; j < H; ++j) {
      const T u = softplus(-k[H + j]) - softplus(-k[j]);  // log f - log i
      out[j] = act_sigmoid(u) * hp[j] + act_sigmoid(-u) * min_g<T, T>(k[2 * H + j]);
    }
  }
}

// d h (candidate) -> d k (the projections) and d h_prev += a * d h
template <typename T, int KIND>
inline void min_bwd_row(const T* k, const T* hp, const T* dc, T* d, T* dk, int64_t H) {
  if constexpr (KIND == 0) {
    for_lanes<T>(H, [&]<typename V>(int64_t j) {
      using X = VT<V>;
      const V dhc = X::load(dc + j);
      const V z = act_sigmoid(X::load(k + j));
      const V kh = X::load(k + H + j);
      X::store(d + j, X::load(d + j) + dhc * (T(1) - z));
      X::store(dk + j, dhc * (min_g<V, T>(kh) - X::load(hp + j)) * z * (T(1) - z));
      X::store(dk + H + j, dhc * z * min_dg<V, T>(kh));
    });
  } else {
    for (int64_t j = 0; j < H; ++j) {
      const T dhc = dc[j];
      const T kf = k[j], ki = k[H + j], kh = k[2 * H + j];
      const T u = softplus(-ki) - softplus(-kf);
      const T fn = act_sigmoid(u), in = act_sigmoid(-u);
      d[j] += dhc * fn;
      const T du = dhc * (hp[j] - min_g<T, T>(kh)) * fn * in;
      dk[j] = du * act_sigmoid(-kf);
      dk[H + j] = -du * act_sigmoid(-ki);
      dk[2 * H + j] = dhc * in * min_dg<T, T>(kh);
    }
  }
}

template <typename T>
std::vector<Tensor> min_forward_impl(const Tensor& xp, const Tensor& h0, int64_t kind, const OptTensor& mask,
                                     const Keep<T>& kh, bool reverse) {
  const int64_t T_ = xp.size(0), B = xp.size(1), H = h0.size(1), G = xp.size(2);
  Tensor hs = pooled_empty({T_, B, H}, xp.options());
  const T* xpp = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  // every (batch row) is an independent chain: split rows over threads, each runs the whole sequence
  at::parallel_for(0, B, std::max<int64_t>(1, 8192 / std::max<int64_t>(T_ * H, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t s = 0; s < T_; ++s) {
      const int64_t t = reverse ? T_ - 1 - s : s;
      const int64_t tp = reverse ? t + 1 : t - 1;
      for (int64_t b = b0; b < b1; ++b) {
        const T* hp = s == 0 ? h0p + b * H : hsp + (tp * B + b) * H;
        const T* k = xpp + (t * B + b) * G;
        T* out = hsp + (t * B + b) * H;
        if (kind == 0) min_fwd_row<T, 0>(k, hp, out, H);
        else min_fwd_row<T, 1>(k, hp, out, H);
        kh.forward(t, b, out, hp, out);
      }
    }
  });
  const int64_t last = reverse ? 0 : T_ - 1;
  Tensor h_n = hs.select(0, last).clone();
  Tensor y = mask.has_value() ? hs * mask->unsqueeze(-1).to(hs.scalar_type()) : hs;
  return {y, h_n, hs};
}

template <typename T>
std::vector<Tensor> min_backward_impl(const Tensor& dy, const Tensor& dh_n, const Tensor& xp, const Tensor& h0,
                                      int64_t kind, const OptTensor& mask, const Keep<T>& kh, bool reverse,
                                      const Tensor& hs) {
  const int64_t T_ = xp.size(0), B = xp.size(1), H = h0.size(1), G = xp.size(2);
  auto opts = xp.options();
  Tensor dxp = pooled_empty({T_, B, G}, opts);
  Tensor dh = dh_n.clone();
  Tensor dcand = at::empty({B, H}, opts);
  const T* dyp = dy.data_ptr<T>();
  const T* xpp = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* hsp = hs.data_ptr<T>();
  T* dxpp = dxp.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dcand.data_ptr<T>();
  const uint8_t* mk = mask_ptr(mask);
  at::parallel_for(0, B, std::max<int64_t>(1, 8192 / std::max<int64_t>(T_ * H, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t s = T_ - 1; s >= 0; --s) {
      const int64_t t = reverse ? T_ - 1 - s : s;
      const int64_t tp = reverse ? t + 1 : t - 1;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const T* hp = s == 0 ? h0p + b * H : hsp + (tp * B + b) * H;
        T* d = dhp + b * H;
        T* dc = dcp + b * H;
        const T* g = dyp + row * H;
        if (mk == nullptr || mk[row]) {
          for (int64_t j = 0; j < H; ++j) d[j] += g[j];
        }
        kh.backward(t, b, d, dc, d);
        const T* k = xpp + row * G;
        T* dk = dxpp + row * G;
        if (kind == 0) min_bwd_row<T, 0>(k, hp, dc, d, dk, H);
        else min_bwd_row<T, 1>(k, hp, dc, d, dk, H);
      }
    }
  });
  return {dxp, dh};
}

OptTensor contig(const OptTensor& t) {
  if (!t.has_value()) return t;
  return t->contiguous();
}

}  // namespace

std::vector<Tensor> rnn_forward(const Tensor& xp_, const Tensor& h0_, const Tensor& w_hh_, const OptTensor& b_hh_,
                                int64_t act, const OptTensor& mask_, const OptTensor& rec_mask_,
                                const OptTensor& zo_, double zo_rate, bool reverse, bool save) {
  Tensor xp = xp_.contiguous(), h0 = h0_.contiguous(), w_hh = w_hh_.contiguous();
  OptTensor b_hh = contig(b_hh_), mask = contig(mask_), rec_mask = contig(rec_mask_), zo = contig(zo_);
  TORCH_CHECK(act >= 0 && act <= 2, "rnnkit fused rnn: unknown activation code");
  Tensor bias = b_hh.has_value() ? *b_hh : at::zeros({h0.size(1)}, xp.options());
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_rnn_forward", [&] {
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, xp.size(1), h0.size(1));
    out = rnn_forward_impl<scalar_t>(xp, h0, w_hh, bias.data_ptr<scalar_t>(), act, mask, rec_mask, kh, reverse,
                                     save);
  });
  return out;
}

std::vector<Tensor> rnn_backward(const Tensor& dy_, const Tensor& dh_n_, const Tensor& h0_, const Tensor& w_hh_,
                                 bool bias, int64_t act, const OptTensor& mask_, const OptTensor& rec_mask_,
                                 const OptTensor& zo_, double zo_rate, bool reverse, const Tensor& hs_,
                                 const Tensor& acts_) {
  Tensor dy = dy_.contiguous(), dh_n = dh_n_.contiguous(), h0 = h0_.contiguous(), w_hh = w_hh_.contiguous();
  Tensor hs = hs_.contiguous(), acts = acts_.contiguous();
  OptTensor mask = contig(mask_), rec_mask = contig(rec_mask_), zo = contig(zo_);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_rnn_backward", [&] {
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, hs.size(1), hs.size(2));
    out = rnn_backward_impl<scalar_t>(dy, dh_n, h0, w_hh, bias, act, mask, rec_mask, kh, reverse, hs, acts);
  });
  return out;
}

std::vector<Tensor> min_forward(const Tensor& xp_, const Tensor& h0_, int64_t kind, const OptTensor& mask_,
                                const OptTensor& zo_, double zo_rate, bool reverse) {
  Tensor xp = xp_.contiguous(), h0 = h0_.contiguous();
  OptTensor mask = contig(mask_), zo = contig(zo_);
  TORCH_CHECK(kind == 0 || kind == 1, "rnnkit fused min: kind must be 0 (MinGRU) or 1 (MinLSTM)");
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_min_forward", [&] {
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, xp.size(1), h0.size(1));
    out = min_forward_impl<scalar_t>(xp, h0, kind, mask, kh, reverse);
  });
  return out;
}

std::vector<Tensor> min_backward(const Tensor& dy_, const Tensor& dh_n_, const Tensor& xp_, const Tensor& h0_,
                                 int64_t kind, const OptTensor& mask_, const OptTensor& zo_, double zo_rate,
                                 bool reverse, const Tensor& hs_) {
  Tensor dy = dy_.contiguous(), dh_n = dh_n_.contiguous(), xp = xp_.contiguous(), h0 = h0_.contiguous();
  Tensor hs = hs_.contiguous();
  OptTensor mask = contig(mask_), zo = contig(zo_);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_min_backward", [&] {
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, xp.size(1), h0.size(1));
    out = min_backward_impl<scalar_t>(dy, dh_n, xp, h0, kind, mask, kh, reverse, hs);
  });
  return out;
}

}  // namespace rnnkit
