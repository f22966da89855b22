// Operator registration: torch.ops.rnnkit_fused.* (CPU kernels; other devices get the dispatcher's
// "no kernel" error, and rnnkit never sends them here).
#include <torch/library.h>

#include "common.h"

namespace rnnkit {

std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                 const OptTensor& b_hh, const OptTensor& w_hr, const OptTensor& w_ci,
                                 const OptTensor& w_cf, const OptTensor& w_co, const OptTensor& ln_hh_w,
                                 const OptTensor& ln_hh_b, const OptTensor& ln_c_w, const OptTensor& ln_c_b,
                                 double cell_clip, const OptTensor& mask, const OptTensor& rec_mask,
                                 const OptTensor& zo_h, double zo_h_rate, const OptTensor& zo_c,
                                 double zo_c_rate, bool reverse, bool save);
std::vector<Tensor> lstm_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n, const Tensor& h0,
                                  const Tensor& c0, const Tensor& w_hh, const OptTensor& b_hh,
                                  const OptTensor& w_hr, const OptTensor& w_ci, const OptTensor& w_cf,
                                  const OptTensor& w_co, const OptTensor& ln_hh_w, const OptTensor& ln_hh_b,
                                  const OptTensor& ln_c_w, const OptTensor& ln_c_b, double cell_clip,
                                  const OptTensor& mask, const OptTensor& rec_mask, const OptTensor& zo_h,
                                  double zo_h_rate, const OptTensor& zo_c, double zo_c_rate, bool reverse,
                                  const Tensor& hs, const Tensor& cs, const Tensor& gates, const Tensor& xhat,
                                  const Tensor& rstd);

std::vector<Tensor> gru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh, const OptTensor& b_hh,
                                const OptTensor& lnw, const OptTensor& lnb, const OptTensor& lnnw,
                                const OptTensor& lnnb, bool reset_after, const OptTensor& mask,
                                const OptTensor& rec_mask, const OptTensor& zo, double zo_rate, bool reverse,
                                bool save);
std::vector<Tensor> gru_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& h0, const Tensor& w_hh,
                                 const OptTensor& b_hh, const OptTensor& lnw, const OptTensor& lnb,
                                 const OptTensor& lnnw, const OptTensor& lnnb, bool reset_after,
                                 const OptTensor& mask, const OptTensor& rec_mask, const OptTensor& zo,
                                 double zo_rate, bool reverse, const Tensor& hs, const Tensor& gates,
                                 const Tensor& xhat, const Tensor& rstd);
std::vector<Tensor> rnn_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh, const OptTensor& b_hh,
                                int64_t act, const OptTensor& mask, const OptTensor& rec_mask,
                                const OptTensor& zo, double zo_rate, bool reverse, bool save);
std::vector<Tensor> rnn_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& h0, const Tensor& w_hh,
                                 bool bias, int64_t act, const OptTensor& mask, const OptTensor& rec_mask,
                                 const OptTensor& zo, double zo_rate, bool reverse, const Tensor& hs,
                                 const Tensor& acts);
std::vector<Tensor> min_forward(const Tensor& xp, const Tensor& h0, int64_t kind, const OptTensor& mask,
                                const OptTensor& zo, double zo_rate, bool reverse);
std::vector<Tensor> min_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& xp, const Tensor& h0,
                                 int64_t kind, const OptTensor& mask, const OptTensor& zo, double zo_rate,
                                 bool reverse, const Tensor& hs);
Tensor linear_forward(const Tensor& x, const Tensor& w, const OptTensor& b);
std::vector<Tensor> linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool need_dx,
                                    bool need_dw, bool need_db);

std::string info() { return gemm_provider(); }

}  // namespace rnnkit

TORCH_LIBRARY(rnnkit_fused, m) {
  m.def("info() -> str", &rnnkit::info);
  m.def("linear_forward(Tensor x, Tensor w, Tensor? b) -> Tensor");
  m.def("linear_backward(Tensor dy, Tensor x, Tensor w, bool need_dx, bool need_dw, bool need_db) -> Tensor[]");
  m.def(
      "lstm_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_hh, Tensor? w_hr, Tensor? w_ci, "
      "Tensor? w_cf, Tensor? w_co, Tensor? ln_hh_w, Tensor? ln_hh_b, Tensor? ln_c_w, Tensor? ln_c_b, "
      "float cell_clip, Tensor? mask, Tensor? rec_mask, Tensor? zo_h, float zo_h_rate, Tensor? zo_c, "
      "float zo_c_rate, bool reverse, bool save) -> Tensor[]");
  m.def(
      "lstm_backward(Tensor dy, Tensor dh_n, Tensor dc_n, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_hh, "
      "Tensor? w_hr, Tensor? w_ci, Tensor? w_cf, Tensor? w_co, Tensor? ln_hh_w, Tensor? ln_hh_b, "
      "Tensor? ln_c_w, Tensor? ln_c_b, float cell_clip, Tensor? mask, Tensor? rec_mask, Tensor? zo_h, "
      "float zo_h_rate, Tensor? zo_c, float zo_c_rate, bool reverse, Tensor hs, Tensor cs, Tensor gates, "
      "Tensor xhat, Tensor rstd) -> Tensor[]");
  m.def(
      "gru_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? ln_hh_w, Tensor? ln_hh_b, "
      "Tensor? ln_hn_w, Tensor? ln_hn_b, bool reset_after, Tensor? mask, Tensor? rec_mask, Tensor? zo, "
      "float zo_rate, bool reverse, bool save) -> Tensor[]");
  m.def(
      "gru_backward(Tensor dy, Tensor dh_n, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? ln_hh_w, "
      "Tensor? ln_hh_b, Tensor? ln_hn_w, Tensor? ln_hn_b, bool reset_after, Tensor? mask, Tensor? rec_mask, "
      "Tensor? zo, float zo_rate, bool reverse, Tensor hs, Tensor gates, Tensor xhat, Tensor rstd) -> Tensor[]");
  m.def(
      "rnn_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor? b_hh, int act, Tensor? mask, Tensor? rec_mask, "
      "Tensor? zo, float zo_rate, bool reverse, bool save) -> Tensor[]");
  m.def(
      "rnn_backward(Tensor dy, Tensor dh_n, Tensor h0, Tensor w_hh, bool bias, int act, Tensor? mask, "
      "Tensor? rec_mask, Tensor? zo, float zo_rate, bool reverse, Tensor hs, Tensor acts) -> Tensor[]");
  m.def(
      "min_forward(Tensor xp, Tensor h0, int kind, Tensor? mask, Tensor? zo, float zo_rate, bool reverse) "
      "-> Tensor[]");
  m.def(
      "min_backward(Tensor dy, Tensor dh_n, Tensor xp, Tensor h0, int kind, Tensor? mask, Tensor? zo, "
      "float zo_rate, bool reverse, Tensor hs) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(rnnkit_fused, CPU, m) {
  m.impl("linear_forward", &rnnkit::linear_forward);
  m.impl("linear_backward", &rnnkit::linear_backward);
  m.impl("lstm_forward", &rnnkit::lstm_forward);
  m.impl("lstm_backward", &rnnkit::lstm_backward);
  m.impl("gru_forward", &rnnkit::gru_forward);
  m.impl("gru_backward", &rnnkit::gru_backward);
  m.impl("rnn_forward", &rnnkit::rnn_forward);
  m.impl("rnn_backward", &rnnkit::rnn_backward);
  m.impl("min_forward", &rnnkit::min_forward);
  m.impl("min_backward", &rnnkit::min_backward);
}
