// Fused GRU: forward and backpropagation through time for rnnkit.GRUCell in both forms
// (reset_after=True, torch/cuDNN; reset_after=False, Cho et al. 2014) and with layer_norm, with recurrent
// dropout, zoneout and padding masks. The math is rnnkit.functional.gru_step; the loop is
// rnnkit.loop.run_loop.
//
// Per step, reset_after=True: one GEMM h_in W_hh^T (B, 3H) and one elementwise pass. reset_after=False
// needs two GEMMs, because W_hn multiplies r * h, which depends on the first.
//
// Saved for backward, per step and batch row (floats): reset_after=True r, z, n and the recurrent part
// of n, W_hn h + b_hn (4H), and h (H); reset_after=False r, z, n (3H) and h (H). With layer_norm also the
// normalised recurrent pre-activations (3H) and their 1/std (1 or 2).
#include "common.h"

namespace rnnkit {
namespace {

struct GruParams {
  int64_t T, B, H;
  bool reset_after, ln;
};

template <typename T>
struct GruPtrs {
  const T* whh;
  const T* bhh;  // zeros when absent
  const T *lnhw, *lnhb, *lnnw, *lnnb;
};

// recurrent pre-activation at k of a row: [LN](W h) + b, lanes V
template <typename V, bool LN, typename T>
inline V rec_pre(const T* r, const T* bias, const T* lw, const T* lb, T mu, T rs, T* xh, int64_t k) {
  using X = VT<V>;
  V v = X::load(r + k);
  if constexpr (LN) {
    v = (v - mu) * rs;
    X::store(xh + k, v);
    v = v * X::load(lw + k) + X::load(lb + k);
  }
  return v + X::load(bias + k);
}

// reset_after=True: r, z, n and the candidate h of one row; saves r, z, n, hn = [LN](W_hn h) + b_hn
template <typename T, bool LN>
inline void gru_after_row(const T* x, const T* r, const T* bias, const T* lw, const T* lb, T mu, T rs, T* xh,
                          const T* hprev, T* gt, T* hcand, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V ar = rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, j);
    const V az = rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, H + j);
    const V hn = rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, 2 * H + j);
    const V rr = act_sigmoid(X::load(x + j) + ar);
    const V z = act_sigmoid(X::load(x + H + j) + az);
    const V n = act_tanh(X::load(x + 2 * H + j) + rr * hn);
    X::store(gt + j, rr);
    X::store(gt + H + j, z);
    X::store(gt + 2 * H + j, n);
    X::store(gt + 3 * H + j, hn);
    X::store(hcand + j, n + z * (X::load(hprev + j) - n));
  });
}

// reset_after=False, first half: r, z and r * h_in
template <typename T, bool LN>
inline void gru_rz_row(const T* x, const T* r, const T* bias, const T* lw, const T* lb, T mu, T rs, T* xh,
                       const T* hin, T* gt, T* rh, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V rr = act_sigmoid(X::load(x + j) + rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, j));
    X::store(gt + j, rr);
    X::store(gt + H + j, act_sigmoid(X::load(x + H + j) + rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, H + j)));
    X::store(rh + j, rr * X::load(hin + j));
  });
}

// reset_after=False, second half: n from W_hn (r h_in), and the candidate h
template <typename T, bool LN>
inline void gru_n_row(const T* xn, const T* r, const T* bias, const T* lw, const T* lb, T mu, T rs, T* xh,
                      const T* hprev, T* gt, T* hcand, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V n = act_tanh(X::load(xn + j) + rec_pre<V, LN>(r, bias, lw, lb, mu, rs, xh, j));
    const V z = X::load(gt + H + j);
    X::store(gt + 2 * H + j, n);
    X::store(hcand + j, n + z * (X::load(hprev + j) - n));
  });
}

// backward, reset_after=True: from d h (candidate) to the gate grads; d h_prev (direct path) += dhc * z
template <typename T>
inline void gru_bwd_after_row(const T* gt, const T* hprev, const T* dc, T* d, T* dx, T* dq, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V r = X::load(gt + j), z = X::load(gt + H + j), n = X::load(gt + 2 * H + j);
    const V hn = X::load(gt + 3 * H + j);
    const V dhc = X::load(dc + j);
    X::store(d + j, X::load(d + j) + dhc * z);
    const V dn = dhc * (T(1) - z) * (T(1) - n * n);
    const V dz = dhc * (X::load(hprev + j) - n) * z * (T(1) - z);
    const V drr = dn * hn * r * (T(1) - r);
    X::store(dx + j, drr);
    X::store(dx + H + j, dz);
    X::store(dx + 2 * H + j, dn);
    X::store(dq + j, drr);
    X::store(dq + H + j, dz);
    X::store(dq + 2 * H + j, dn * r);
  });
}

// backward, reset_after=False: d z, d n (pre-activations)
template <typename T>
inline void gru_bwd_zn_row(const T* gt, const T* hprev, const T* dc, T* d, T* dx, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V z = X::load(gt + H + j), n = X::load(gt + 2 * H + j);
    const V dhc = X::load(dc + j);
    X::store(d + j, X::load(d + j) + dhc * z);
    X::store(dx + H + j, dhc * (X::load(hprev + j) - n) * z * (T(1) - z));
    X::store(dx + 2 * H + j, dhc * (T(1) - z) * (T(1) - n * n));
  });
}

// backward, reset_after=False: from d (r h_in) to d r (pre-activation) and d h_in; saves r h_in for dW_hn
template <typename T, bool RM>
inline void gru_bwd_r_row(const T* gt, const T* hprev, const T* m, const T* drh, T* rh, T* dhin, T* dx,
                          int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V r = X::load(gt + j);
    V hi = X::load(hprev + j);
    if constexpr (RM) hi = hi * X::load(m + j);
    const V g = X::load(drh + j);
    X::store(rh + j, r * hi);
    X::store(dhin + j, X::load(dhin + j) + g * r);
    X::store(dx + j, g * hi * r * (T(1) - r));
  });
}

template <typename T>
std::vector<Tensor> forward_impl(const Tensor& xp, const Tensor& h0, const GruParams& p, const GruPtrs<T>& w,
                                 const OptTensor& mask, const OptTensor& rec_mask, const Keep<T>& kh,
                                 bool reverse, bool save) {
  const int64_t T_ = p.T, B = p.B, H = p.H, G = 3 * H;
  const int64_t S = p.reset_after ? 4 * H : 3 * H;  // saved gate floats per row
  auto opts = xp.options();
  Tensor hs = pooled_empty({T_, B, H}, opts);
  auto none = at::empty({0}, opts);
  // without save (inference) gates and normalised pre-activations live in per-step scratch
  const int64_t TS = save ? T_ : 1;
  Tensor gates = pooled_empty({TS, B, S}, opts);
  Tensor xhat = p.ln ? pooled_empty({TS, B, G}, opts) : none;
  Tensor rstd = p.ln ? pooled_empty({TS, B, 2}, opts) : none;
  Tensor rec = at::empty({B, G}, opts);
  Tensor hin_buf = rec_mask.has_value() ? at::empty({B, H}, opts) : Tensor();
  Tensor rh_buf = p.reset_after ? Tensor() : at::empty({B, H}, opts);

  const T* xpp = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* gp = gates.data_ptr<T>();
  T* xhp = p.ln ? xhat.data_ptr<T>() : nullptr;
  T* rsp = p.ln ? rstd.data_ptr<T>() : nullptr;
  T* recp = rec.data_ptr<T>();
  const T* rm = opt_ptr<T>(rec_mask);
  T* hinb = rec_mask.has_value() ? hin_buf.data_ptr<T>() : nullptr;
  T* rhb = p.reset_after ? nullptr : rh_buf.data_ptr<T>();
  RhsMatrix<T> w_all, w_rz, w_n;  // W_hh^T (H x 3H); or W_hr,hz^T (H x 2H) and W_hn^T (H x H)
  if (p.reset_after) {
    w_all.init(w.whh, H, true, H, G);
  } else {
    w_rz.init(w.whh, H, true, H, 2 * H);
    w_n.init(w.whh + 2 * H * H, H, true, H, H);
  }

  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    const int64_t tp = reverse ? t + 1 : t - 1;
    const T* hp = s == 0 ? h0p : hsp + tp * B * H;
    if (s + 1 < T_) prefetch_block(xpp + (reverse ? t - 1 : t + 1) * B * G, B * G);
    const T* hin = hp;
    if (rm != nullptr) {
      for (int64_t k = 0; k < B * H; ++k) hinb[k] = hp[k] * rm[k];
      hin = hinb;
    }
    T* hs_t = hsp + t * B * H;
    if (p.reset_after) {
      w_all.mul(B, hin, H, recp, G, false);  // (B, 3H)
      for_rows(B, 6 * G, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = t * B + b;
          const int64_t srow = save ? row : b;
          const T* r = recp + b * G;
          const T* x = xpp + row * G;
          T* gt = gp + srow * S;
          if (p.ln) {
            T mu, rs;
            ln_stats(r, G, mu, rs);
            rsp[srow * 2] = rs;
            gru_after_row<T, true>(x, r, w.bhh, w.lnhw, w.lnhb, mu, rs, xhp + srow * G, hp + b * H, gt,
                                   hs_t + b * H, H);
          } else {
            gru_after_row<T, false>(x, r, w.bhh, nullptr, nullptr, T(0), T(1), nullptr, hp + b * H, gt,
                                    hs_t + b * H, H);
          }
          kh.forward(t, b, hs_t + b * H, hp + b * H, hs_t + b * H);
        }
      });
    } else {
      w_rz.mul(B, hin, H, recp, 2 * H, false);  // (B, 2H): r, z
      for_rows(B, 4 * G, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = t * B + b;
          const int64_t srow = save ? row : b;
          const T* r = recp + b * 2 * H;
          const T* x = xpp + row * G;
          T* gt = gp + srow * S;
          if (p.ln) {
            T mu, rs;
            ln_stats(r, 2 * H, mu, rs);
            rsp[srow * 2] = rs;
            gru_rz_row<T, true>(x, r, w.bhh, w.lnhw, w.lnhb, mu, rs, xhp + srow * G, hin + b * H, gt, rhb + b * H,
                                H);
          } else {
            gru_rz_row<T, false>(x, r, w.bhh, nullptr, nullptr, T(0), T(1), nullptr, hin + b * H, gt,
                                 rhb + b * H, H);
          }
        }
      });
      w_n.mul(B, rhb, H, recp, H, false);  // (B, H): W_hn (r h)
      for_rows(B, 4 * G, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = t * B + b;
          const int64_t srow = save ? row : b;
          const T* r = recp + b * H;
          const T* x = xpp + row * G;
          T* gt = gp + srow * S;
          const T* hprev = hp + b * H;
          T* hc = hs_t + b * H;
          if (p.ln) {
            T mu, rs;
            ln_stats(r, H, mu, rs);
            rsp[srow * 2 + 1] = rs;
            gru_n_row<T, true>(x + 2 * H, r, w.bhh + 2 * H, w.lnnw, w.lnnb, mu, rs, xhp + srow * G + 2 * H, hprev,
                               gt, hc, H);
          } else {
            gru_n_row<T, false>(x + 2 * H, r, w.bhh + 2 * H, nullptr, nullptr, T(0), T(1), nullptr, hprev, gt,
                                hc, H);
          }
          kh.forward(t, b, hc, hprev, hc);
        }
      });
    }
  }
  const int64_t last = reverse ? 0 : T_ - 1;
  Tensor h_n = hs.select(0, last).clone();
  Tensor y = mask.has_value() ? hs * mask->unsqueeze(-1).to(hs.scalar_type()) : hs;
  if (!save) return {y, h_n, none, none, none, none};
  return {y, h_n, hs, gates, xhat, rstd};
}

template <typename T>
std::vector<Tensor> backward_impl(const Tensor& dy, const Tensor& dh_n, const Tensor& h0, const GruParams& p,
                                  const GruPtrs<T>& w, const OptTensor& mask, const OptTensor& rec_mask,
                                  const Keep<T>& kh, bool reverse, const Tensor& hs, const Tensor& gates,
                                  const Tensor& xhat, const Tensor& rstd, bool bias) {
  const int64_t T_ = p.T, B = p.B, H = p.H, G = 3 * H;
  const int64_t S = p.reset_after ? 4 * H : 3 * H;
  auto opts = hs.options();
  Tensor dxp = pooled_empty({T_, B, G}, opts);
  // grads after layer norm (where b_hh, the LN shift and gain act) and before it (where W_hh acts)
  Tensor dpost = p.reset_after ? pooled_empty({T_, B, G}, opts) : dxp;
  Tensor dr = p.ln ? pooled_empty({T_, B, G}, opts) : dpost;
  Tensor dh = dh_n.clone();
  Tensor dcand = at::empty({B, H}, opts);
  Tensor rh_all = p.reset_after ? Tensor() : pooled_empty({T_, B, H}, opts);
  Tensor drh = p.reset_after ? Tensor() : at::empty({B, H}, opts);
  Tensor dhin = rec_mask.has_value() ? at::empty({B, H}, opts) : Tensor();

  const T* dyp = dy.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* hsp = hs.data_ptr<T>();
  const T* gp = gates.data_ptr<T>();
  const T* xhp = p.ln ? xhat.data_ptr<T>() : nullptr;
  const T* rsp = p.ln ? rstd.data_ptr<T>() : nullptr;
  T* dxpp = dxp.data_ptr<T>();
  T* dpp = dpost.data_ptr<T>();
  T* drp = dr.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dcand.data_ptr<T>();
  T* rha = p.reset_after ? nullptr : rh_all.data_ptr<T>();
  T* drhp = p.reset_after ? nullptr : drh.data_ptr<T>();
  const T* rm = opt_ptr<T>(rec_mask);
  T* dhinp = rec_mask.has_value() ? dhin.data_ptr<T>() : nullptr;
  const uint8_t* mk = mask_ptr(mask);
  RhsMatrix<T> w_all, w_rz, w_n;  // W_hh (3H x H); or W_hr,hz (2H x H) and W_hn (H x H)
  if (p.reset_after) {
    w_all.init(w.whh, H, false, G, H);
  } else {
    w_rz.init(w.whh, H, false, 2 * H, H);
    w_n.init(w.whh + 2 * H * H, H, false, H, H);
  }

  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    const int64_t tp = reverse ? t + 1 : t - 1;
    const T* hp = s == 0 ? h0p : hsp + tp * B * H;
    if (s > 0) {
      prefetch_block(gp + tp * B * S, B * S);
      prefetch_block(dyp + tp * B * H, B * H);
    }
    for_rows(B, 8 * G, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        T* d = dhp + b * H;
        const T* g = dyp + row * H;
        if (mk == nullptr || mk[row]) {
          for (int64_t j = 0; j < H; ++j) d[j] += g[j];
        }
        T* dc = dcp + b * H;
        kh.backward(t, b, d, dc, d);
        const T* gt = gp + row * S;
        const T* hprev = hp + b * H;
        T* dx = dxpp + row * G;
        if (p.reset_after) {
          T* dq = dpp + row * G;
          gru_bwd_after_row<T>(gt, hprev, dc, d, dx, dq, H);
          if (p.ln) ln_backward_row(dq, w.lnhw, xhp + row * G, rsp[row * 2], G, drp + row * G);
        } else {
          gru_bwd_zn_row<T>(gt, hprev, dc, d, dx, H);
          if (p.ln)
            ln_backward_row(dx + 2 * H, w.lnnw, xhp + row * G + 2 * H, rsp[row * 2 + 1], H,
                            drp + row * G + 2 * H);
        }
      }
    });
    const T* dr_t = drp + t * B * G;
    T* acc = rm != nullptr ? dhinp : dhp;  // where d h_in accumulates
    if (p.reset_after) {
      if (rm != nullptr) w_all.mul(B, dr_t, G, dhinp, H, false);
      else w_all.mul(B, dr_t, G, dhp, H, true);
    } else {
      // d (r h_in) = dR_n W_hn, then the reset gate's share and r, z through W_hr, W_hz
      w_n.mul(B, dr_t + 2 * H, G, drhp, H, false);
      if (rm != nullptr) std::fill(dhinp, dhinp + B * H, T(0));
      for_rows(B, 4 * G, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = t * B + b;
          const T* gt = gp + row * S;
          const T* hprev = hp + b * H;
          T* dx = dxpp + row * G;
          if (rm != nullptr)
            gru_bwd_r_row<T, true>(gt, hprev, rm + b * H, drhp + b * H, rha + row * H, acc + b * H, dx, H);
          else
            gru_bwd_r_row<T, false>(gt, hprev, nullptr, drhp + b * H, rha + row * H, acc + b * H, dx, H);
          if (p.ln) ln_backward_row(dx, w.lnhw, xhp + row * G, rsp[row * 2], 2 * H, drp + row * G);
        }
      });
      w_rz.mul(B, dr_t, G, acc, H, true);
    }
    if (rm != nullptr)
      for (int64_t k = 0; k < B * H; ++k) dhp[k] += dhinp[k] * rm[k];
  }

  // weight gradients: one GEMM over all steps (two for reset_after=False)
  Tensor dw_hh = at::empty({G, H}, opts);
  T* dwp = dw_hh.data_ptr<T>();
  const int64_t TB = T_ * B;
  const int64_t Mrz = p.reset_after ? G : 2 * H;  // rows of W_hh that multiply h_in
  recurrent_weight_grad<T>(Mrz, H, T_, B, drp, G, h0p, hsp, rm, reverse, dwp, opts);
  if (!p.reset_after) gemm_tn(H, H, TB, drp + 2 * H, G, rha, H, dwp + 2 * H * H, H, false);

  Tensor db_hh = at::empty({0}, opts), dlnw = at::empty({0}, opts), dlnb = at::empty({0}, opts);
  Tensor dlnnw = at::empty({0}, opts), dlnnb = at::empty({0}, opts);
  if (bias) {
    db_hh = at::empty({G}, opts);
    colsum<T>(dpp, TB, G, G, db_hh.data_ptr<T>());
  }
  if (p.ln) {
    const int64_t n1 = p.reset_after ? G : 2 * H;
    dlnw = at::empty({n1}, opts);
    dlnb = at::empty({n1}, opts);
    colsum_prod<T>(dpp, xhp, TB, n1, G, G, dlnw.data_ptr<T>());
    colsum<T>(dpp, TB, n1, G, dlnb.data_ptr<T>());
    if (!p.reset_after) {
      dlnnw = at::empty({H}, opts);
      dlnnb = at::empty({H}, opts);
      colsum_prod<T>(dpp + 2 * H, xhp + 2 * H, TB, H, G, G, dlnnw.data_ptr<T>());
      colsum<T>(dpp + 2 * H, TB, H, G, dlnnb.data_ptr<T>());
    }
  }
  return {dxp, dh, dw_hh, db_hh, dlnw, dlnb, dlnnw, dlnnb};
}

OptTensor contig(const OptTensor& t) {
  if (!t.has_value()) return t;
  return t->contiguous();
}

template <typename T>
GruPtrs<T> pointers(const Tensor& zeros, const Tensor& w_hh, const OptTensor& b_hh, const OptTensor& lnw,
                    const OptTensor& lnb, const OptTensor& lnnw, const OptTensor& lnnb) {
  GruPtrs<T> w;
  w.whh = w_hh.data_ptr<T>();
  w.bhh = b_hh.has_value() ? b_hh->data_ptr<T>() : zeros.data_ptr<T>();
  w.lnhw = opt_ptr<T>(lnw);
  w.lnhb = opt_ptr<T>(lnb);
  w.lnnw = opt_ptr<T>(lnnw);
  w.lnnb = opt_ptr<T>(lnnb);
  return w;
}

}  // namespace

std::vector<Tensor> gru_forward(const Tensor& xp_, const Tensor& h0_, const Tensor& w_hh_, const OptTensor& b_hh_,
                                const OptTensor& lnw_, const OptTensor& lnb_, const OptTensor& lnnw_,
                                const OptTensor& lnnb_, bool reset_after, const OptTensor& mask_,
                                const OptTensor& rec_mask_, const OptTensor& zo_, double zo_rate, bool reverse,
                                bool save) {
  Tensor xp = xp_.contiguous(), h0 = h0_.contiguous(), w_hh = w_hh_.contiguous();
  OptTensor b_hh = contig(b_hh_), lnw = contig(lnw_), lnb = contig(lnb_), lnnw = contig(lnnw_),
            lnnb = contig(lnnb_), mask = contig(mask_), rec_mask = contig(rec_mask_), zo = contig(zo_);
  GruParams p{xp.size(0), xp.size(1), h0.size(1), reset_after, lnw.has_value()};
  TORCH_CHECK(w_hh.size(0) == 3 * p.H && w_hh.size(1) == p.H, "rnnkit fused gru: weight_hh must be (3H, H)");
  Tensor zeros = at::zeros({3 * p.H}, w_hh.options());
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_gru_forward", [&] {
    auto w = pointers<scalar_t>(zeros, w_hh, b_hh, lnw, lnb, lnnw, lnnb);
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, p.B, p.H);
    out = forward_impl<scalar_t>(xp, h0, p, w, mask, rec_mask, kh, reverse, save);
  });
  return out;
}

std::vector<Tensor> gru_backward(const Tensor& dy_, const Tensor& dh_n_, const Tensor& h0_, const Tensor& w_hh_,
                                 const OptTensor& b_hh_, const OptTensor& lnw_, const OptTensor& lnb_,
                                 const OptTensor& lnnw_, const OptTensor& lnnb_, bool reset_after,
                                 const OptTensor& mask_, const OptTensor& rec_mask_, const OptTensor& zo_,
                                 double zo_rate, bool reverse, const Tensor& hs_, const Tensor& gates_,
                                 const Tensor& xhat_, const Tensor& rstd_) {
  Tensor dy = dy_.contiguous(), dh_n = dh_n_.contiguous(), h0 = h0_.contiguous(), w_hh = w_hh_.contiguous();
  Tensor hs = hs_.contiguous(), gates = gates_.contiguous(), xhat = xhat_.contiguous(), rstd = rstd_.contiguous();
  OptTensor b_hh = contig(b_hh_), lnw = contig(lnw_), lnb = contig(lnb_), lnnw = contig(lnnw_),
            lnnb = contig(lnnb_), mask = contig(mask_), rec_mask = contig(rec_mask_), zo = contig(zo_);
  GruParams p{hs.size(0), hs.size(1), h0.size(1), reset_after, lnw.has_value()};
  Tensor zeros = at::zeros({3 * p.H}, w_hh.options());
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_gru_backward", [&] {
    auto w = pointers<scalar_t>(zeros, w_hh, b_hh, lnw, lnb, lnnw, lnnb);
    auto kh = make_keep<scalar_t>(mask, zo, zo_rate, p.B, p.H);
    out = backward_impl<scalar_t>(dy, dh_n, h0, p, w, mask, rec_mask, kh, reverse, hs, gates, xhat, rstd,
                                  b_hh.has_value());
  });
  return out;
}

}  // namespace rnnkit
