// The GEMM of the fused engine and the column sums of its weight-gradient epilogue.
#include "common.h"

#include <dlfcn.h>

namespace rnnkit {
namespace {

// Fortran BLAS (LP64): column-major, arguments by pointer.
using sgemm_t = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                         const float*, const int*, const float*, const int*, const float*, float*, const int*);
using dgemm_t = void (*)(const char*, const char*, const int*, const int*, const int*, const double*,
                         const double*, const int*, const double*, const int*, const double*, double*,
                         const int*);

struct Blas {
  sgemm_t sgemm = nullptr;
  dgemm_t dgemm = nullptr;
  std::string provider = "at::mm (no BLAS symbols found in libtorch_cpu)";
  Blas() {
    // torch's CPU library exports the BLAS it was linked with (MKL on x86-64 wheels); look the symbols
    // up at run time so that a build of torch without them still loads this extension.
    void* h = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) return;
    sgemm = reinterpret_cast<sgemm_t>(dlsym(h, "sgemm_"));
    dgemm = reinterpret_cast<dgemm_t>(dlsym(h, "dgemm_"));
    if (sgemm != nullptr && dgemm != nullptr) {
      provider = "BLAS sgemm_/dgemm_ from libtorch_cpu";
    } else {
      sgemm = nullptr;
      dgemm = nullptr;
    }
  }
};

const Blas& blas() {
  static Blas b;
  return b;
}

bool fits_int(int64_t v) { return v >= 0 && v <= 2147483647LL; }

template <typename T>
void gemm_aten(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  // op(A) as an (M, K) view, op(B) as (K, N), C as (M, N)
  Tensor a = ta ? at::from_blob(const_cast<T*>(A), {M, K}, {1, lda}, opts)
                : at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  Tensor b = tb ? at::from_blob(const_cast<T*>(B), {K, N}, {1, ldb}, opts)
                : at::from_blob(const_cast<T*>(B), {K, N}, {ldb, 1}, opts);
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
    if (alpha != T(1)) c.mul_(alpha);
  } else {
    c.addmm_(a, b, beta, alpha);
  }
}

template <typename T, typename Fn>
void gemm_impl(Fn fn, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  if (fn == nullptr || !fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) ||
      !fits_int(ldc)) {
    gemm_aten<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T
  const char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
  int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
  fn(&ctb, &cta, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_impl<float>(blas().sgemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_impl<double>(blas().dgemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

std::string gemm_provider() { return blas().provider; }

// accumulated in double: the sums run over all T*B rows
template <typename T>
void colsum(const T* a, int64_t N, int64_t K, int64_t lda, T* out) {
  // columns in parallel chunks; each chunk walks all rows (rows are contiguous, so this streams memory)
  at::parallel_for(0, K, std::max<int64_t>(64, K / 8), [&](int64_t k0, int64_t k1) {
    std::vector<double> acc(k1 - k0, 0.0);
    for (int64_t i = 0; i < N; ++i) {
      const T* r = a + i * lda + k0;
      for (int64_t k = 0; k < k1 - k0; ++k) acc[k] += r[k];
    }
    for (int64_t k = k0; k < k1; ++k) out[k] = static_cast<T>(acc[k - k0]);
  });
}

template <typename T>
void colsum_prod(const T* a, const T* b, int64_t N, int64_t K, int64_t lda, int64_t ldb, T* out) {
  at::parallel_for(0, K, std::max<int64_t>(64, K / 8), [&](int64_t k0, int64_t k1) {
    std::vector<double> acc(k1 - k0, 0.0);
    for (int64_t i = 0; i < N; ++i) {
      const T* ra = a + i * lda + k0;
      const T* rb = b + i * ldb + k0;
      for (int64_t k = 0; k < k1 - k0; ++k) acc[k] += static_cast<double>(ra[k]) * rb[k];
    }
    for (int64_t k = k0; k < k1; ++k) out[k] = static_cast<T>(acc[k - k0]);
  });
}

template void colsum<float>(const float*, int64_t, int64_t, int64_t, float*);
template void colsum<double>(const double*, int64_t, int64_t, int64_t, double*);
template void colsum_prod<float>(const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*);
template void colsum_prod<double>(const double*, const double*, int64_t, int64_t, int64_t, int64_t, double*);

}  // namespace rnnkit
