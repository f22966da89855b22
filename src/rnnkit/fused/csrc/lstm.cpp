// Fused LSTM: forward and backpropagation through time for every option of rnnkit.LSTMCell
// (peephole, layer_norm, proj_size, cell_clip) with recurrent dropout, zoneout and padding masks.
//
// The math is rnnkit.functional.lstm_step; the loop is rnnkit.loop.run_loop. Per step: one GEMM
// h_in W_hh^T (plus h W_hr^T with a projection) and one elementwise pass over the gates of each row.
//
// Saved for backward, per step and batch row (floats): gate activations i, f, g, o (4H), the state
// c (H) and h (P); with layer_norm also the normalised recurrent pre-activation (4H) and its 1/std (1).
// The candidate cell, tanh(c) and the projection input are recomputed in backward.
#include "common.h"

namespace rnnkit {
namespace {

struct LstmParams {
  int64_t T, B, H, P, G;
  bool proj, peep, ln, has_clip;
  double clip;
};

template <typename T>
struct LstmPtrs {
  const T* whh;
  const T* bhh;  // zeros when absent
  const T* whr;
  const T *pi, *pf, *po;  // zeros when absent
  const T *lnhw, *lnhb, *lncw, *lncb;
};

// Gate pre-activations of one row (xp + [LN](W_hh h_in) + b_hh, plus the peepholes), then i, f, g and the
// candidate cell; o's pre-activation is left in gt for lstm_o_row, which needs the new cell first.
template <typename T, bool LN>
inline void lstm_ifg_row(const T* x, const T* r, const T* bias, const T* lw, const T* lb, T mu, T rs, T* xh,
                         const T* cprev, const T* pi, const T* pf, bool has_clip, T clip, T* gt, T* cnew,
                         int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    V a[4];
    for (int q = 0; q < 4; ++q) {
      const int64_t k = q * H + j;
      V v = X::load(r + k);
      if constexpr (LN) {
        v = (v - mu) * rs;
        X::store(xh + k, v);
        v = v * X::load(lw + k) + X::load(lb + k);
      }
      a[q] = X::load(x + k) + v + X::load(bias + k);
    }
    const V cp = X::load(cprev + j);
    const V i = act_sigmoid(a[0] + X::load(pi + j) * cp);
    const V f = act_sigmoid(a[1] + X::load(pf + j) * cp);
    const V g = act_tanh(a[2]);
    V c = f * cp + i * g;
    if (has_clip) c = vmin(X::bcast(clip), vmax(X::bcast(-clip), c));
    X::store(gt + j, i);
    X::store(gt + H + j, f);
    X::store(gt + 2 * H + j, g);
    X::store(gt + 3 * H + j, a[3]);
    X::store(cnew + j, c);
  });
}

// o and the candidate h (before the projection) of one row from the candidate cell.
template <typename T, bool LN>
inline void lstm_o_row(T* go, const T* cnew, const T* po, T* hh, int64_t H, T mu, T rs, const T* lw,
                       const T* lb) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V c = X::load(cnew + j);
    const V o = act_sigmoid(X::load(go + j) + X::load(po + j) * c);
    X::store(go + j, o);
    V co = c;
    if constexpr (LN) co = (c - mu) * rs * X::load(lw + j) + X::load(lb + j);
    X::store(hh + j, o * act_tanh(co));
  });
}

template <typename T>
std::vector<Tensor> forward_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0, const LstmParams& p,
                                 const LstmPtrs<T>& w, const OptTensor& mask, const OptTensor& rec_mask,
                                 const Keep<T>& kh, const Keep<T>& kc, bool reverse, bool save) {
  const int64_t T_ = p.T, B = p.B, H = p.H, P = p.P, G = p.G;
  auto opts = xp.options();
  auto none = at::empty({0}, opts);
  // without save (inference) the gates and cells live in per-step scratch that stays in cache
  Tensor hs = pooled_empty({T_, B, P}, opts);
  Tensor cs = save ? pooled_empty({T_, B, H}, opts) : at::empty({2, B, H}, opts);
  Tensor gates = save ? pooled_empty({T_, B, G}, opts) : at::empty({B, G}, opts);
  Tensor xhat = !p.ln ? none : save ? pooled_empty({T_, B, G}, opts) : at::empty({B, G}, opts);
  Tensor rstd = !p.ln ? none : save ? pooled_empty({T_, B}, opts) : at::empty({B}, opts);
  Tensor rec = at::empty({B, G}, opts);
  Tensor hin_buf = rec_mask.has_value() ? at::empty({B, P}, opts) : Tensor();
  Tensor hh_buf = p.proj ? at::empty({B, H}, opts) : Tensor();

  const T* xpp = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* c0p = c0.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* csp = cs.data_ptr<T>();
  T* gp = gates.data_ptr<T>();
  T* xhp = p.ln ? xhat.data_ptr<T>() : nullptr;
  T* rsp = p.ln ? rstd.data_ptr<T>() : nullptr;
  T* recp = rec.data_ptr<T>();
  const T* rm = opt_ptr<T>(rec_mask);
  T* hinb = rec_mask.has_value() ? hin_buf.data_ptr<T>() : nullptr;
  T* hhb = p.proj ? hh_buf.data_ptr<T>() : nullptr;
  const T clip = p.has_clip ? static_cast<T>(p.clip) : std::numeric_limits<T>::infinity();
  RhsMatrix<T> whh_t, whr_t;  // W_hh^T (P x 4H), W_hr^T (H x P)
  whh_t.init(w.whh, P, true, P, G);
  if (p.proj) whr_t.init(w.whr, H, true, H, P);

  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    const int64_t tp = reverse ? t + 1 : t - 1;
    if (s + 1 < T_) prefetch_block(xpp + (reverse ? t - 1 : t + 1) * B * G, B * G);
    const T* hp = s == 0 ? h0p : hsp + tp * B * P;
    // the cell state: all steps when saving, else two alternating buffers
    const T* cp = s == 0 ? c0p : save ? csp + tp * B * H : csp + ((s - 1) & 1) * B * H;
    T* cs_t = save ? csp + t * B * H : csp + (s & 1) * B * H;
    const T* hin = hp;
    if (rm != nullptr) {
      for (int64_t k = 0; k < B * P; ++k) hinb[k] = hp[k] * rm[k];
      hin = hinb;
    }
    whh_t.mul(B, hin, P, recp, G, false);  // (B, 4H)
    T* hs_t = hsp + t * B * P;
    for_rows(B, 6 * G, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const int64_t srow = save ? row : b;  // row in the saved (or scratch) buffers
        const T* r = recp + b * G;
        const T* x = xpp + row * G;
        T* gt = gp + srow * G;
        const T* cprev = cp + b * H;
        T* cnew = cs_t + b * H;
        if (p.ln) {
          T mu, rs;
          ln_stats(r, G, mu, rs);
          rsp[srow] = rs;
          lstm_ifg_row<T, true>(x, r, w.bhh, w.lnhw, w.lnhb, mu, rs, xhp + srow * G, cprev, w.pi, w.pf,
                                p.has_clip, clip, gt, cnew, H);
        } else {
          lstm_ifg_row<T, false>(x, r, w.bhh, nullptr, nullptr, T(0), T(1), nullptr, cprev, w.pi, w.pf,
                                 p.has_clip, clip, gt, cnew, H);
        }
        T muc = 0, rsc = 1;
        if (p.ln) ln_stats(cnew, H, muc, rsc);
        T* hcand = p.proj ? hhb + b * H : hs_t + b * P;
        if (p.ln) lstm_o_row<T, true>(gt + 3 * H, cnew, w.po, hcand, H, muc, rsc, w.lncw, w.lncb);
        else lstm_o_row<T, false>(gt + 3 * H, cnew, w.po, hcand, H, muc, rsc, w.lncw, w.lncb);
        kc.forward(t, b, cnew, cprev, cnew);
        if (!p.proj) kh.forward(t, b, hcand, hp + b * P, hcand);
      }
    });
    if (p.proj) {
      whr_t.mul(B, hhb, H, hs_t, P, false);  // (B, P)
      if (!kh.identity() || kh.mask != nullptr)
        for (int64_t b = 0; b < B; ++b) kh.forward(t, b, hs_t + b * P, hp + b * P, hs_t + b * P);
    }
  }
  const int64_t last = reverse ? 0 : T_ - 1;
  Tensor h_n = hs.select(0, last).clone();
  Tensor c_n = save ? cs.select(0, last).clone() : cs.select(0, (T_ - 1) & 1).clone();
  Tensor y = mask.has_value() ? hs * mask->unsqueeze(-1).to(hs.scalar_type()) : hs;
  if (!save) return {y, h_n, c_n, none, none, none, none, none};
  return {y, h_n, c_n, hs, cs, gates, xhat, rstd};
}

// ---- backward rows ---------------------------------------------------------------------------------------
// the candidate cell, recomputed from the saved gates: clip(f * c_prev + i * g)
template <typename T>
inline void lstm_bwd_cell_row(const T* gt, const T* cprev, bool has_clip, T clip, T* cn, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    V c = X::load(gt + H + j) * X::load(cprev + j) + X::load(gt + j) * X::load(gt + 2 * H + j);
    if (has_clip) c = vmin(X::bcast(clip), vmax(X::bcast(-clip), c));
    X::store(cn + j, c);
  });
}

// output gate: d o_pre and d c_out from d hh = d (o * tanh(c_out)); c_out = LN ? xc * lw + lb : c
template <typename T, bool LN, bool PROJ>
inline void lstm_bwd_out_row(const T* go, const T* c, const T* lw, const T* lb, const T* dhh, T* dgo, T* dco,
                             T* hh, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V o = X::load(go + j);
    V co = X::load(c + j);
    if constexpr (LN) co = co * X::load(lw + j) + X::load(lb + j);
    const V tc = act_tanh(co);
    if constexpr (PROJ) X::store(hh + j, o * tc);
    const V dhj = X::load(dhh + j);
    X::store(dgo + j, dhj * tc * o * (T(1) - o));
    X::store(dco + j, dhj * o * (T(1) - tc * tc));
  });
}

// d i, d f, d g (pre-activations) and d c_prev from d c (candidate) = dcc + dco + p_o * d o_pre
template <typename T>
inline void lstm_bwd_gates_row(const T* gt, const T* cprev, const T* dcc, const T* dco, const T* pi,
                               const T* pf, const T* po, bool has_clip, T clip, T* dg, T* dcr, int64_t H) {
  for_lanes<T>(H, [&]<typename V>(int64_t j) {
    using X = VT<V>;
    const V i = X::load(gt + j), f = X::load(gt + H + j), g = X::load(gt + 2 * H + j);
    const V cp = X::load(cprev + j);
    V dc = X::load(dcc + j) + X::load(dco + j) + X::load(po + j) * X::load(dg + 3 * H + j);
    if (has_clip) {  // clamp passes the gradient inside [-clip, clip] (bounds included), as torch's
      const V craw = f * cp + i * g;
      dc = (craw > X::bcast(clip)) | (craw < X::bcast(-clip)) ? X::bcast(T(0)) : dc;
    }
    const V di = dc * g * i * (T(1) - i);
    const V df = dc * cp * f * (T(1) - f);
    X::store(dg + j, di);
    X::store(dg + H + j, df);
    X::store(dg + 2 * H + j, dc * i * (T(1) - g * g));
    X::store(dcr + j, X::load(dcr + j) + dc * f + X::load(pi + j) * di + X::load(pf + j) * df);
  });
}

template <typename T>
std::vector<Tensor> backward_impl(const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n, const Tensor& h0,
                                  const Tensor& c0, const LstmParams& p, const LstmPtrs<T>& w,
                                  const OptTensor& mask, const OptTensor& rec_mask, const Keep<T>& kh,
                                  const Keep<T>& kc, bool reverse, const Tensor& hs, const Tensor& cs,
                                  const Tensor& gates, const Tensor& xhat, const Tensor& rstd, bool bias) {
  const int64_t T_ = p.T, B = p.B, H = p.H, P = p.P, G = p.G;
  auto opts = hs.options();
  Tensor dxp = pooled_empty({T_, B, G}, opts);
  Tensor dr = p.ln ? pooled_empty({T_, B, G}, opts) : dxp;  // grads of the raw recurrent pre-activation
  Tensor dh = dh_n.clone(), dc = dc_n.clone();
  Tensor dhp_all = p.proj ? pooled_empty({T_, B, P}, opts) : Tensor();  // d h-candidate, for dW_hr
  Tensor hh_all = p.proj ? pooled_empty({T_, B, H}, opts) : Tensor();   // o * tanh(c), for dW_hr
  Tensor dhh = at::empty({B, H}, opts);
  Tensor scratch = at::empty({4, B, H}, opts);  // candidate cell, its LN input, d cand cell, d c_out
  Tensor dhin = rec_mask.has_value() ? at::empty({B, P}, opts) : Tensor();

  const T* dyp = dy.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* c0p = c0.data_ptr<T>();
  const T* hsp = hs.data_ptr<T>();
  const T* csp = cs.data_ptr<T>();
  const T* gp = gates.data_ptr<T>();
  const T* xhp = p.ln ? xhat.data_ptr<T>() : nullptr;
  const T* rsp = p.ln ? rstd.data_ptr<T>() : nullptr;
  T* dxpp = dxp.data_ptr<T>();
  T* drp = dr.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dc.data_ptr<T>();
  T* dhpa = p.proj ? dhp_all.data_ptr<T>() : nullptr;
  T* hha = p.proj ? hh_all.data_ptr<T>() : nullptr;
  T* dhhp = dhh.data_ptr<T>();
  T* cn_s = scratch.data_ptr<T>();
  T* xc_s = cn_s + B * H;
  T* dcc_s = xc_s + B * H;
  T* dco_s = dcc_s + B * H;
  const T* rm = opt_ptr<T>(rec_mask);
  T* dhinp = rec_mask.has_value() ? dhin.data_ptr<T>() : nullptr;
  const uint8_t* mk = mask_ptr(mask);
  const T clip = p.has_clip ? static_cast<T>(p.clip) : std::numeric_limits<T>::infinity();
  RhsMatrix<T> whh_m, whr_m;  // W_hh (4H x P), W_hr (P x H)
  whh_m.init(w.whh, P, false, G, P);
  if (p.proj) whr_m.init(w.whr, H, false, P, H);

  // accumulators: [dp_i, dp_f, dp_o, dln_c_w, dln_c_b], each H
  Accum<T> acc;
  const bool need_acc = p.peep || p.ln;
  if (need_acc) acc.init(5 * H);

  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = reverse ? T_ - 1 - s : s;
    const int64_t tp = reverse ? t + 1 : t - 1;
    const T* hp = s == 0 ? h0p : hsp + tp * B * P;
    const T* cp = s == 0 ? c0p : csp + tp * B * H;
    if (s > 0) {
      prefetch_block(gp + tp * B * G, B * G);
      prefetch_block(dyp + tp * B * P, B * P);
    }
    // d h: the carried gradient plus the output's; split into the candidate's and the old state's share
    T* dcand_h = p.proj ? dhpa + t * B * P : dhhp;
    for (int64_t b = 0; b < B; ++b) {
      T* d = dhp + b * P;
      const T* g = dyp + (t * B + b) * P;
      if (mk == nullptr || mk[t * B + b]) {
        for (int64_t j = 0; j < P; ++j) d[j] += g[j];
      }
      kh.backward(t, b, d, dcand_h + b * P, d);
    }
    if (p.proj) whr_m.mul(B, dcand_h, P, dhhp, H, false);  // (B, H)

    for_rows(B, 12 * G, [&](int64_t b0, int64_t b1, int tid) {
      T* a = need_acc ? acc.row(tid) : nullptr;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const T* gt = gp + row * G;
        const T* cprev = cp + b * H;
        T* cn = cn_s + b * H;
        T* xc = xc_s + b * H;
        T* dcc = dcc_s + b * H;
        T* dco = dco_s + b * H;
        T* dcr = dcp + b * H;  // on entry d c (state); becomes d c_prev
        const T* dhh_r = dhhp + b * H;
        T* dg = dxpp + row * G;
        lstm_bwd_cell_row<T>(gt, cprev, p.has_clip, clip, cn, H);
        T muc = 0, rsc = 1;
        if (p.ln) {
          ln_stats(cn, H, muc, rsc);
          for (int64_t j = 0; j < H; ++j) xc[j] = (cn[j] - muc) * rsc;
        }
        kc.backward(t, b, dcr, dcc, dcr);
        T* hh = p.proj ? hha + row * H : nullptr;
        if (p.ln && p.proj)
          lstm_bwd_out_row<T, true, true>(gt + 3 * H, xc, w.lncw, w.lncb, dhh_r, dg + 3 * H, dco, hh, H);
        else if (p.ln)
          lstm_bwd_out_row<T, true, false>(gt + 3 * H, xc, w.lncw, w.lncb, dhh_r, dg + 3 * H, dco, hh, H);
        else if (p.proj)
          lstm_bwd_out_row<T, false, true>(gt + 3 * H, cn, w.lncw, w.lncb, dhh_r, dg + 3 * H, dco, hh, H);
        else
          lstm_bwd_out_row<T, false, false>(gt + 3 * H, cn, w.lncw, w.lncb, dhh_r, dg + 3 * H, dco, hh, H);
        if (p.ln) {
          for (int64_t j = 0; j < H; ++j) {
            a[3 * H + j] += dco[j] * xc[j];
            a[4 * H + j] += dco[j];
          }
          ln_backward_row(dco, w.lncw, xc, rsc, H, dco);
        }
        lstm_bwd_gates_row<T>(gt, cprev, dcc, dco, w.pi, w.pf, w.po, p.has_clip, clip, dg, dcr, H);
        if (p.peep) {
          for (int64_t j = 0; j < H; ++j) {
            a[j] += dg[j] * cprev[j];
            a[H + j] += dg[H + j] * cprev[j];
            a[2 * H + j] += dg[3 * H + j] * cn[j];
          }
        }
        if (p.ln) ln_backward_row(dg, w.lnhw, xhp + row * G, rsp[row], G, drp + row * G);
      }
    });
    // d h_prev += (dR_t W_hh) * m
    const T* dr_t = drp + t * B * G;
    if (rm != nullptr) {
      whh_m.mul(B, dr_t, G, dhinp, P, false);
      for (int64_t k = 0; k < B * P; ++k) dhp[k] += dhinp[k] * rm[k];
    } else {
      whh_m.mul(B, dr_t, G, dhp, P, true);
    }
  }

  // weight gradients: one GEMM over all steps each
  Tensor dw_hh = at::empty({G, P}, opts);
  T* dwp = dw_hh.data_ptr<T>();
  const int64_t TB = T_ * B;
  recurrent_weight_grad<T>(G, P, T_, B, drp, G, h0p, hsp, rm, reverse, dwp, opts);
  Tensor db_hh = at::empty({0}, opts), dlnw = at::empty({0}, opts), dlnb = at::empty({0}, opts);
  if (bias) {
    db_hh = at::empty({G}, opts);
    colsum<T>(dxpp, TB, G, G, db_hh.data_ptr<T>());
  }
  if (p.ln) {
    dlnw = at::empty({G}, opts);
    colsum_prod<T>(dxpp, xhp, TB, G, G, G, dlnw.data_ptr<T>());
    dlnb = bias ? db_hh.clone() : at::empty({G}, opts);
    if (!bias) colsum<T>(dxpp, TB, G, G, dlnb.data_ptr<T>());
  }
  Tensor dw_hr = at::empty({0}, opts);
  if (p.proj) {
    dw_hr = at::empty({P, H}, opts);
    gemm_tn(P, H, TB, dhpa, P, hha, H, dw_hr.data_ptr<T>(), H, false);
  }
  Tensor dpi = at::empty({0}, opts), dpf = dpi, dpo = dpi, dlncw = dpi, dlncb = dpi;
  if (p.peep) {
    dpi = acc.reduce(0, H, opts);
    dpf = acc.reduce(H, H, opts);
    dpo = acc.reduce(2 * H, H, opts);
  }
  if (p.ln) {
    dlncw = acc.reduce(3 * H, H, opts);
    dlncb = acc.reduce(4 * H, H, opts);
  }
  return {dxp, dh, dc, dw_hh, db_hh, dw_hr, dpi, dpf, dpo, dlnw, dlnb, dlncw, dlncb};
}

struct Prepared {
  LstmParams p;
  Tensor zeros_g, zeros_h;  // stand-ins for absent biases and peepholes
};

Prepared prepare(const Tensor& h0, const Tensor& c0, const Tensor& w_hh, const OptTensor& w_hr,
                 const OptTensor& w_ci, const OptTensor& ln_hh_w, double cell_clip, int64_t T_, int64_t B) {
  Prepared r;
  r.p.T = T_;
  r.p.B = B;
  r.p.G = w_hh.size(0);
  r.p.H = r.p.G / 4;
  r.p.P = h0.size(1);
  r.p.proj = w_hr.has_value();
  r.p.peep = w_ci.has_value();
  r.p.ln = ln_hh_w.has_value();
  r.p.has_clip = cell_clip > 0;
  r.p.clip = cell_clip;
  TORCH_CHECK(c0.size(1) == r.p.H, "rnnkit fused lstm: c0 must be (B, H)");
  TORCH_CHECK(w_hh.size(1) == r.p.P, "rnnkit fused lstm: weight_hh must be (4H, P)");
  r.zeros_g = at::zeros({r.p.G}, w_hh.options());
  r.zeros_h = at::zeros({r.p.H}, w_hh.options());
  return r;
}

template <typename T>
LstmPtrs<T> pointers(const Prepared& pr, const Tensor& w_hh, const OptTensor& b_hh, const OptTensor& w_hr,
                     const OptTensor& w_ci, const OptTensor& w_cf, const OptTensor& w_co,
                     const OptTensor& ln_hh_w, const OptTensor& ln_hh_b, const OptTensor& ln_c_w,
                     const OptTensor& ln_c_b) {
  LstmPtrs<T> w;
  const T* zg = pr.zeros_g.data_ptr<T>();
  const T* zh = pr.zeros_h.data_ptr<T>();
  w.whh = w_hh.data_ptr<T>();
  w.bhh = b_hh.has_value() ? b_hh->data_ptr<T>() : zg;
  w.whr = opt_ptr<T>(w_hr);
  w.pi = w_ci.has_value() ? w_ci->data_ptr<T>() : zh;
  w.pf = w_cf.has_value() ? w_cf->data_ptr<T>() : zh;
  w.po = w_co.has_value() ? w_co->data_ptr<T>() : zh;
  w.lnhw = opt_ptr<T>(ln_hh_w);
  w.lnhb = opt_ptr<T>(ln_hh_b);
  w.lncw = opt_ptr<T>(ln_c_w);
  w.lncb = opt_ptr<T>(ln_c_b);
  return w;
}

OptTensor contig(const OptTensor& t) {
  if (!t.has_value()) return t;
  return t->contiguous();
}

}  // namespace

std::vector<Tensor> lstm_forward(const Tensor& xp_, const Tensor& h0_, const Tensor& c0_, const Tensor& w_hh_,
                                 const OptTensor& b_hh_, const OptTensor& w_hr_, const OptTensor& w_ci_,
                                 const OptTensor& w_cf_, const OptTensor& w_co_, const OptTensor& ln_hh_w_,
                                 const OptTensor& ln_hh_b_, const OptTensor& ln_c_w_, const OptTensor& ln_c_b_,
                                 double cell_clip, const OptTensor& mask_, const OptTensor& rec_mask_,
                                 const OptTensor& zo_h_, double zo_h_rate, const OptTensor& zo_c_,
                                 double zo_c_rate, bool reverse, bool save) {
  Tensor xp = xp_.contiguous(), h0 = h0_.contiguous(), c0 = c0_.contiguous(), w_hh = w_hh_.contiguous();
  OptTensor b_hh = contig(b_hh_), w_hr = contig(w_hr_), w_ci = contig(w_ci_), w_cf = contig(w_cf_),
            w_co = contig(w_co_), ln_hh_w = contig(ln_hh_w_), ln_hh_b = contig(ln_hh_b_),
            ln_c_w = contig(ln_c_w_), ln_c_b = contig(ln_c_b_), mask = contig(mask_),
            rec_mask = contig(rec_mask_), zo_h = contig(zo_h_), zo_c = contig(zo_c_);
  const int64_t T_ = xp.size(0), B = xp.size(1);
  Prepared pr = prepare(h0, c0, w_hh, w_hr, w_ci, ln_hh_w, cell_clip, T_, B);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "rnnkit_lstm_forward", [&] {
    auto w = pointers<scalar_t>(pr, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b);
    auto kh = make_keep<scalar_t>(mask, zo_h, zo_h_rate, B, pr.p.P);
    auto kc = make_keep<scalar_t>(mask, zo_c, zo_c_rate, B, pr.p.H);
    out = forward_impl<scalar_t>(xp, h0, c0, pr.p, w, mask, rec_mask, kh, kc, reverse, save);
  });
  return out;
}

std::vector<Tensor> lstm_backward(const Tensor& dy_, const Tensor& dh_n_, const Tensor& dc_n_, const Tensor& h0_,
                                  const Tensor& c0_, const Tensor& w_hh_, const OptTensor& b_hh_,
                                  const OptTensor& w_hr_, const OptTensor& w_ci_, const OptTensor& w_cf_,
                                  const OptTensor& w_co_, const OptTensor& ln_hh_w_, const OptTensor& ln_hh_b_,
                                  const OptTensor& ln_c_w_, const OptTensor& ln_c_b_, double cell_clip,
                                  const OptTensor& mask_, const OptTensor& rec_mask_, const OptTensor& zo_h_,
                                  double zo_h_rate, const OptTensor& zo_c_, double zo_c_rate, bool reverse,
                                  const Tensor& hs_, const Tensor& cs_, const Tensor& gates_,
                                  const Tensor& xhat_, const Tensor& rstd_) {
  Tensor dy = dy_.contiguous(), dh_n = dh_n_.contiguous(), dc_n = dc_n_.contiguous();
  Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous(), w_hh = w_hh_.contiguous();
  Tensor hs = hs_.contiguous(), cs = cs_.contiguous(), gates = gates_.contiguous();
  Tensor xhat = xhat_.contiguous(), rstd = rstd_.contiguous();
  OptTensor b_hh = contig(b_hh_), w_hr = contig(w_hr_), w_ci = contig(w_ci_), w_cf = contig(w_cf_),
            w_co = contig(w_co_), ln_hh_w = contig(ln_hh_w_), ln_hh_b = contig(ln_hh_b_),
            ln_c_w = contig(ln_c_w_), ln_c_b = contig(ln_c_b_), mask = contig(mask_),
            rec_mask = contig(rec_mask_), zo_h = contig(zo_h_), zo_c = contig(zo_c_);
  const int64_t T_ = hs.size(0), B = hs.size(1);
  Prepared pr = prepare(h0, c0, w_hh, w_hr, w_ci, ln_hh_w, cell_clip, T_, B);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnnkit_lstm_backward", [&] {
    auto w = pointers<scalar_t>(pr, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b);
    auto kh = make_keep<scalar_t>(mask, zo_h, zo_h_rate, B, pr.p.P);
    auto kc = make_keep<scalar_t>(mask, zo_c, zo_c_rate, B, pr.p.H);
    out = backward_impl<scalar_t>(dy, dh_n, dc_n, h0, c0, pr.p, w, mask, rec_mask, kh, kc, reverse, hs, cs,
                                  gates, xhat, rstd, b_hh.has_value());
  });
  return out;
}

}  // namespace rnnkit
