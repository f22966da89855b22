// The input projection y = x W^T + b of all time steps at once, with its backward, for float32: the same
// packed GEMM as the recurrent steps (the BLAS that torch calls for F.linear runs this skinny product,
// K = input size, at a fraction of the machine's speed on some CPUs). float64 stays with F.linear.
#include "common.h"

namespace rnnkit {

Tensor linear_forward(const Tensor& x_, const Tensor& w_, const OptTensor& b_) {
  TORCH_CHECK(x_.scalar_type() == at::kFloat, "rnnkit fused linear: float32 only");
  Tensor x = x_.contiguous(), w = w_.contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  TORCH_CHECK(w.size(1) == K, "rnnkit fused linear: weight must be (N, K)");
  Tensor y = pooled_empty({M, N}, x.options());
  RhsMatrix<float> wt;  // W^T (K x N)
  wt.init(w.data_ptr<float>(), K, true, K, N);
  Tensor b = b_.has_value() ? b_->contiguous() : Tensor();
  wt.mul(M, x.data_ptr<float>(), K, y.data_ptr<float>(), N, false, b.defined() ? b.data_ptr<float>() : nullptr);
  return y;
}

std::vector<Tensor> linear_backward(const Tensor& dy_, const Tensor& x_, const Tensor& w_, bool need_dx,
                                    bool need_dw, bool need_db) {
  Tensor dy = dy_.contiguous(), x = x_.contiguous(), w = w_.contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  auto none = at::empty({0}, x.options());
  Tensor dx = none, dw = none, db = none;
  if (need_dx) {
    dx = pooled_empty({M, K}, x.options());
    RhsMatrix<float> wm;  // W (N x K)
    wm.init(w.data_ptr<float>(), K, false, N, K);
    wm.mul(M, dy.data_ptr<float>(), N, dx.data_ptr<float>(), K, false);
  }
  if (need_dw) {
    dw = at::empty({N, K}, x.options());
    gemm_tn(N, K, M, dy.data_ptr<float>(), N, x.data_ptr<float>(), K, dw.data_ptr<float>(), K, false);
  }
  if (need_db) {
    db = at::empty({N}, x.options());
    colsum<float>(dy.data_ptr<float>(), M, N, N, db.data_ptr<float>());
  }
  return {dx, dw, db};
}

}  // namespace rnnkit
