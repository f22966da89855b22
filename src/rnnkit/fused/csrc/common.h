// Shared pieces of rnnkit's fused engine: fast elementwise math, a GEMM that calls BLAS directly, the
// padding-mask / zoneout mixing of states, layer-norm rows and per-thread accumulators.
//
// Conventions: every buffer is a dense row-major array; time-major (T, B, n) sequences; rows are batch
// entries. A *step* of a runner does one GEMM with the recurrent weights and one elementwise pass over
// the gates of every batch row.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <string>
#include <vector>

namespace rnnkit {

using at::Tensor;
using OptTensor = std::optional<at::Tensor>;

// ---------------------------------------------------------------------------------------------------------
// Elementwise math. float: branch-free approximations (within ~3 ulp of torch's) so that the loops that
// call them vectorise (with -fno-trapping-math); double: the C library (the double path exists for
// gradcheck, not for speed).
// ---------------------------------------------------------------------------------------------------------
// Cephes expf: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n through the exponent bits.
// n is rounded with the 1.5 * 2^23 trick rather than floor() so that the loops stay branch-free.
static inline float fexp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(float));
  return y * scale;
}

// Eigen's rational tanh (clamped to +-7.9053, where float tanh rounds to +-1).
static inline float ftanh(float x) {
  const float c = 7.90531110763549805f;
  x = x > c ? c : x;
  x = x < -c ? -c : x;
  float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  return p / q;
}

static inline float fsigmoid(float x) { return 1.0f / (1.0f + fexp(-x)); }

static inline float act_exp(float x) { return fexp(x); }
static inline double act_exp(double x) { return std::exp(x); }
static inline float act_tanh(float x) { return ftanh(x); }
static inline double act_tanh(double x) { return std::tanh(x); }
static inline float act_sigmoid(float x) { return fsigmoid(x); }
static inline double act_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---------------------------------------------------------------------------------------------------------
// Explicit vectors (GCC vector extensions) for the float rows and the GEMM kernel: kVW lanes, 16 where the
// build targets AVX-512 and 8 otherwise. Written out rather than left to the auto-vectoriser, which turns
// the clamps into blends and ran ~2x slower. Row bodies are templates on the lane type V (vfloat, or the
// scalar T for double and for the tail) run by for_lanes().
// ---------------------------------------------------------------------------------------------------------
#if defined(__AVX512F__)
constexpr int kVW = 16;
#else
constexpr int kVW = 8;
#endif
typedef float vfloat __attribute__((vector_size(4 * kVW)));
typedef int32_t vint __attribute__((vector_size(4 * kVW)));

template <typename V>
struct VT {  // scalar lanes: float or double
  using S = V;
  static V load(const S* p) { return *p; }
  static void store(S* p, V v) { *p = v; }
  static V bcast(S x) { return x; }
};
template <>
struct VT<vfloat> {
  using S = float;
  static vfloat load(const float* p) {
    vfloat v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof(v)); }
  static vfloat bcast(float x) { return vfloat{} + x; }
};

// max / min with the bound as the first argument: like the x86 instructions, a NaN in the second stays NaN
static inline vfloat vmax(vfloat a, vfloat b) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
  return (vfloat)_mm256_max_ps((__m256)a, (__m256)b);
#else
  return a > b ? a : b;
#endif
}
static inline vfloat vmin(vfloat a, vfloat b) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_min_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
  return (vfloat)_mm256_min_ps((__m256)a, (__m256)b);
#else
  return a < b ? a : b;
#endif
}
static inline float vmax(float a, float b) { return a > b ? a : b; }
static inline float vmin(float a, float b) { return a < b ? a : b; }
static inline double vmax(double a, double b) { return a > b ? a : b; }
static inline double vmin(double a, double b) { return a < b ? a : b; }

static inline vfloat act_exp(vfloat x) {  // fexp, lane-wise
  x = vmin(VT<vfloat>::bcast(88.0f), vmax(VT<vfloat>::bcast(-87.0f), x));
  const vfloat n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const vfloat r = x - n * 0.693359375f - n * -2.12194440e-4f;
  const vfloat z = r * r;
  vfloat y = VT<vfloat>::bcast(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const vint bits = (__builtin_convertvector(n, vint) + 127) << 23;
  return y * (vfloat)bits;
}
static inline vfloat act_tanh(vfloat x) {  // ftanh, lane-wise
  const float c = 7.90531110763549805f;
  x = vmin(VT<vfloat>::bcast(c), vmax(VT<vfloat>::bcast(-c), x));
  const vfloat x2 = x * x;
  vfloat p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  vfloat q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  return p / q;
}
static inline vfloat act_sigmoid(vfloat x) { return 1.0f / (1.0f + act_exp(-x)); }

// body.template operator()<V>(j) for j over [0, n): kVW lanes at a time for float, then one at a time
template <typename T, typename F>
inline void for_lanes(int64_t n, F&& body) {
  int64_t j = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; j + kVW <= n; j += kVW) body.template operator()<vfloat>(j);
  }
  for (; j < n; ++j) body.template operator()<T>(j);
}

// ---------------------------------------------------------------------------------------------------------
// GEMM on row-major arrays: C (M x N) = alpha * op(A) op(B) + beta * C, op(X) = X or X^T.
// Calls the Fortran BLAS that torch links (MKL's sgemm_/dgemm_) when the process has it, else at::mm.
// ---------------------------------------------------------------------------------------------------------
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);
std::string gemm_provider();

// The right-hand side of a recurrent GEMM, constant over the sequence: B (K x N) = W^T (W is N x K) or W
// (K x N), row-major with leading dimension ldw. mul() computes C (M x N) (+)= A (M x K) B.
//
// float: B is packed once into panels of kNR columns ([N/kNR][K][kNR], zero-padded) and multiplied by a
// register-blocked kernel (kMR rows x kNR columns of accumulators). For the small batches of recurrent
// steps this is about twice as fast as the BLAS call (which repacks W at every step); it also runs
// single-threaded below a size where forking threads costs more than it saves. double: the BLAS.
template <typename T>
struct RhsMatrix {
  const T* w = nullptr;
  int64_t ldw = 0, K = 0, N = 0;
  bool trans = false;
  void init(const T* w_, int64_t ldw_, bool trans_, int64_t K_, int64_t N_) {
    w = w_;
    ldw = ldw_;
    trans = trans_;
    K = K_;
    N = N_;
  }
  void mul(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const {
    gemm(false, trans, M, N, K, T(1), A, lda, w, ldw, accumulate ? T(1) : T(0), C, ldc);
  }
};

// the GEMM kernel's tile: kMR rows x kNR = kNV vectors of columns of accumulators in registers
#if defined(__AVX512F__)
constexpr int kNV = 2, kMR = 6;
#else
constexpr int kNV = 3, kMR = 4;
#endif
constexpr int64_t kNR = kVW * kNV;

// C (M x N) (+)= A^T B for A (K x M, lda) and B (K x N, ldb): the weight gradients, summed over all T*B
// rows of a sequence in one product. float: blocks of K are packed (A transposed) and multiplied by the
// kernel of RhsMatrix<float>, in parallel over tiles; double: the BLAS.
void gemm_tn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, bool accumulate);
void gemm_tn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
             double* C, int64_t ldc, bool accumulate);

template <>
struct RhsMatrix<float> {
  std::vector<float> packed;
  int64_t K = 0, N = 0, panels = 0;
  void init(const float* w, int64_t ldw, bool trans, int64_t K_, int64_t N_);
  // bias (N,), optional, is added to every row of C
  void mul(int64_t M, const float* A, int64_t lda, float* C, int64_t ldc, bool accumulate,
           const float* bias = nullptr) const;
};

// ---------------------------------------------------------------------------------------------------------
// Large buffers (saved activations, gradients, workspaces) from a small cache of freed blocks, so that a
// training loop does not page-fault its way through fresh memory at every call (the kernel's page-fault
// path cost up to 15% of a forward+backward here). Blocks of at least 1 MiB are kept up to
// RNNKIT_POOL_MB (default 1024) in all; smaller requests go to torch's allocator.
// ---------------------------------------------------------------------------------------------------------
Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& opts);

// ---------------------------------------------------------------------------------------------------------
// Rows in parallel: fn(b0, b1, tid) over [0, B); serial when a step is too small to pay for a fork.
// ---------------------------------------------------------------------------------------------------------
constexpr int64_t kParallelWork = 16384;  // elementwise work per step below which one thread runs it

template <typename F>
inline void for_rows(int64_t B, int64_t work_per_row, const F& fn) {
  if (B * work_per_row < kParallelWork || B < 2 || at::get_num_threads() < 2 || at::in_parallel_region()) {
    fn(int64_t(0), B, 0);
    return;
  }
  int64_t grain = std::max<int64_t>(1, kParallelWork / 4 / std::max<int64_t>(work_per_row, 1));
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) { fn(b0, b1, at::get_thread_num()); });
}

// Per-thread accumulators for the sums over batch and time of the peephole and cell-layer-norm gradients,
// which need values recomputed inside the backward loop. In T, as autograd accumulates them.
template <typename T>
struct Accum {
  std::vector<T> data;
  int64_t n = 0;
  void init(int64_t n_) {
    n = n_;
    data.assign(static_cast<size_t>(n) * std::max(1, at::get_num_threads()), T(0));
  }
  T* row(int tid) { return data.data() + static_cast<int64_t>(tid) * n; }
  // the sum of the per-thread rows [offset, offset + len), as a (len,) tensor
  Tensor reduce(int64_t offset, int64_t len, const at::TensorOptions& opts) const {
    Tensor out = at::zeros({len}, opts);
    T* o = out.data_ptr<T>();
    const int64_t rows = n ? static_cast<int64_t>(data.size()) / n : 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < len; ++j) o[j] += data[r * n + offset + j];
    return out;
  }
};

// ---------------------------------------------------------------------------------------------------------
// How a candidate state becomes the state (rnnkit.loop.advance): zoneout, then the padding mask.
//   s = mask ? cand + z * (old - cand) : old,   z a (T, B, n) 0/1 tensor or a constant rate.
// ---------------------------------------------------------------------------------------------------------
template <typename T>
struct Keep {
  const uint8_t* mask = nullptr;  // (T, B) or null
  const T* zo = nullptr;          // (T, B, n) or null
  T rate = 0;                     // used when zo is null
  int64_t B = 0, n = 0;

  bool valid(int64_t t, int64_t b) const { return mask == nullptr || mask[t * B + b] != 0; }
  bool identity() const { return zo == nullptr && rate == T(0); }

  void forward(int64_t t, int64_t b, const T* cand, const T* old, T* out) const {
    if (!valid(t, b)) {
      if (out != old) std::memcpy(out, old, sizeof(T) * n);
      return;
    }
    if (zo != nullptr) {
      const T* z = zo + (t * B + b) * n;
      for (int64_t j = 0; j < n; ++j) out[j] = cand[j] + z[j] * (old[j] - cand[j]);
    } else if (rate != T(0)) {
      for (int64_t j = 0; j < n; ++j) out[j] = cand[j] + rate * (old[j] - cand[j]);
    } else if (out != cand) {
      std::memcpy(out, cand, sizeof(T) * n);
    }
  }

  // d_total (grad of the state) -> d_cand and d_old (d_old may alias d_total).
  void backward(int64_t t, int64_t b, const T* d_total, T* d_cand, T* d_old) const {
    if (!valid(t, b)) {
      for (int64_t j = 0; j < n; ++j) d_cand[j] = T(0);
      if (d_old != d_total) std::memcpy(d_old, d_total, sizeof(T) * n);
      return;
    }
    if (zo != nullptr) {
      const T* z = zo + (t * B + b) * n;
      for (int64_t j = 0; j < n; ++j) {
        T g = d_total[j];
        d_cand[j] = g - z[j] * g;
        d_old[j] = z[j] * g;
      }
    } else if (rate != T(0)) {
      for (int64_t j = 0; j < n; ++j) {
        T g = d_total[j];
        d_cand[j] = g - rate * g;
        d_old[j] = rate * g;
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        d_cand[j] = d_total[j];
        d_old[j] = T(0);
      }
    }
  }
};

template <typename T>
Keep<T> make_keep(const OptTensor& mask, const OptTensor& zo, double rate, int64_t B, int64_t n) {
  Keep<T> k;
  k.mask = mask.has_value() ? mask->data_ptr<uint8_t>() : nullptr;
  k.zo = zo.has_value() ? zo->data_ptr<T>() : nullptr;
  k.rate = static_cast<T>(rate);
  k.B = B;
  k.n = n;
  return k;
}

// ---------------------------------------------------------------------------------------------------------
// Layer norm of one row (eps 1e-5, biased variance, as torch.nn.functional.layer_norm).
// ---------------------------------------------------------------------------------------------------------
constexpr double kLnEps = 1e-5;

// Row reductions in 8 lanes for float (explicit vectors: a plain `s += x[j]` loop is a serial chain of
// dependent adds without -ffast-math); a plain loop for double.
inline float hsum(vfloat v) {
  float s = 0;
  for (int l = 0; l < kVW; ++l) s += v[l];
  return s;
}

template <typename T>
inline T lane_sum(const T* x, int64_t n) {
  int64_t j = 0;
  T s = 0;
  if constexpr (std::is_same_v<T, float>) {
    vfloat acc = VT<vfloat>::bcast(0.0f);
    for (; j + kVW <= n; j += kVW) acc += VT<vfloat>::load(x + j);
    s = hsum(acc);
  }
  for (; j < n; ++j) s += x[j];
  return s;
}

// sum of (x - mu)^2
template <typename T>
inline T lane_sq_dev(const T* x, T mu, int64_t n) {
  int64_t j = 0;
  T s = 0;
  if constexpr (std::is_same_v<T, float>) {
    vfloat acc = VT<vfloat>::bcast(0.0f);
    for (; j + kVW <= n; j += kVW) {
      const vfloat d = VT<vfloat>::load(x + j) - mu;
      acc += d * d;
    }
    s = hsum(acc);
  }
  for (; j < n; ++j) s += (x[j] - mu) * (x[j] - mu);
  return s;
}

template <typename T>
inline void ln_stats(const T* x, int64_t n, T& mean, T& rstd) {
  mean = lane_sum(x, n) / static_cast<T>(n);
  T var = lane_sq_dev(x, mean, n) / static_cast<T>(n);
  rstd = static_cast<T>(1) / std::sqrt(var + static_cast<T>(kLnEps));
}

// dx from dy (grad after the affine), gain, normalised input and rstd of one row; dx may alias dy.
template <typename T>
inline void ln_backward_row(const T* dy, const T* gamma, const T* xhat, T rstd, int64_t n, T* dx) {
  int64_t j = 0;
  T m1 = 0, m2 = 0;
  if constexpr (std::is_same_v<T, float>) {
    using X = VT<vfloat>;
    vfloat a1 = X::bcast(0.0f), a2 = X::bcast(0.0f);
    for (; j + kVW <= n; j += kVW) {
      const vfloat g = X::load(dy + j) * X::load(gamma + j);
      a1 += g;
      a2 += g * X::load(xhat + j);
    }
    m1 = hsum(a1);
    m2 = hsum(a2);
  }
  for (; j < n; ++j) {
    T g = dy[j] * gamma[j];
    m1 += g;
    m2 += g * xhat[j];
  }
  const T a = m1 / static_cast<T>(n), c = m2 / static_cast<T>(n);
  for_lanes<T>(n, [&]<typename V>(int64_t k) {
    using X = VT<V>;
    X::store(dx + k, rstd * (X::load(dy + k) * X::load(gamma + k) - a - X::load(xhat + k) * c));
  });
}

// Column sums of a (N, K) row-major array (and of its product with another) into out (K,).
template <typename T>
void colsum(const T* a, int64_t N, int64_t K, int64_t lda, T* out);
template <typename T>
void colsum_prod(const T* a, const T* b, int64_t N, int64_t K, int64_t lda, int64_t ldb, T* out);

// Ask for a block of memory that the next step reads (the next time step's input projections, gates):
// the hardware prefetchers do not bridge the gap between steps. Small blocks only.
template <typename T>
inline void prefetch_block(const T* p, int64_t n) {
  const int64_t bytes = n * static_cast<int64_t>(sizeof(T));
  if (bytes > 65536) return;
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

inline const uint8_t* mask_ptr(const OptTensor& m) { return m.has_value() ? m->data_ptr<uint8_t>() : nullptr; }

template <typename T>
inline const T* opt_ptr(const OptTensor& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

// dW (M x N) = sum over steps of dgates_t^T h_in_t, in one GEMM over all T*B rows (two where the first step
// reads h0): dgates (T, B, ldg) with the gradient of the M rows that multiply h; hs (T, B, N) the states
// written by forward; h_in_t is the state before step t (h0 at a direction's first step), times the
// recurrent-dropout mask rm (B, N) where there is one.
template <typename T>
void recurrent_weight_grad(int64_t M, int64_t N, int64_t T_, int64_t B, const T* dg, int64_t ldg, const T* h0p,
                           const T* hsp, const T* rm, bool reverse, T* dwp, const at::TensorOptions& opts) {
  if (rm != nullptr) {
    Tensor hin = pooled_empty({T_, B, N}, opts);
    T* hinp = hin.data_ptr<T>();
    for (int64_t t = 0; t < T_; ++t) {
      const bool first = reverse ? t == T_ - 1 : t == 0;
      const T* hp = first ? h0p : hsp + (reverse ? t + 1 : t - 1) * B * N;
      for (int64_t k = 0; k < B * N; ++k) hinp[t * B * N + k] = hp[k] * rm[k];
    }
    gemm_tn(M, N, T_ * B, dg, ldg, hinp, N, dwp, N, false);
  } else if (!reverse) {
    gemm_tn(M, N, (T_ - 1) * B, dg + B * ldg, ldg, hsp, N, dwp, N, false);
    gemm_tn(M, N, B, dg, ldg, h0p, N, dwp, N, true);
  } else {
    gemm_tn(M, N, (T_ - 1) * B, dg, ldg, hsp + B * N, N, dwp, N, false);
    gemm_tn(M, N, B, dg + (T_ - 1) * B * ldg, ldg, h0p, N, dwp, N, true);
  }
}

inline Tensor undefined_or(const OptTensor& t) { return t.has_value() ? *t : Tensor(); }

}  // namespace rnnkit
