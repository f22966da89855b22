// The GEMM of the fused engine and the column sums of its weight-gradient epilogue.
#include "common.h"

#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>

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
  std::string provider = "at::mm (no BLAS symbols in libtorch_cpu)";
  Blas() {
    // torch's CPU library exports the BLAS it was linked with (MKL on x86-64 wheels); look the symbols
    // up at run time so that a build of torch without them still loads this extension.
    void* h = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) return;
    sgemm = reinterpret_cast<sgemm_t>(dlsym(h, "sgemm_"));
    dgemm = reinterpret_cast<dgemm_t>(dlsym(h, "dgemm_"));
    if (sgemm != nullptr && dgemm != nullptr) {
      provider = "BLAS dgemm_ of libtorch_cpu";
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

// ---- buffer pool ------------------------------------------------------------------------------------------
namespace {

class BlockPool {
 public:
  static BlockPool& get() {
    static BlockPool* pool = new BlockPool();  // never destroyed: tensors may outlive static destruction
    return *pool;
  }
  // a block of at least `bytes`; `cap` receives its real size
  void* take(size_t bytes, size_t& cap) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= bytes + bytes / 4) {  // at most 25% wasted
        cap = it->first;
        void* p = it->second;
        free_.erase(it);
        cached_ -= cap;
        return p;
      }
    }
    cap = (bytes + 4095) & ~size_t(4095);
    void* p = nullptr;
    if (posix_memalign(&p, 64, cap) != 0) throw std::bad_alloc();
    return p;
  }
  void give(void* p, size_t cap) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (cached_ + cap <= limit_) {
        free_.emplace(cap, p);
        cached_ += cap;
        return;
      }
    }
    std::free(p);
  }

 private:
  BlockPool() {
    const char* env = std::getenv("RNNKIT_POOL_MB");
    limit_ = (env != nullptr ? static_cast<size_t>(std::atoll(env)) : size_t(1024)) << 20;
  }
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0, limit_ = 0;
};

}  // namespace

Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  const size_t bytes = static_cast<size_t>(n) * c10::elementSize(c10::typeMetaToScalarType(opts.dtype()));
  if (bytes < (size_t(1) << 20)) return at::empty(sizes, opts);
  size_t cap = 0;
  void* p = BlockPool::get().take(bytes, cap);
  return at::from_blob(p, sizes, [cap](void* q) { BlockPool::get().give(q, cap); }, opts);
}

// ---- packed GEMM for the per-step products --------------------------------------------------------------
namespace {

inline vfloat loadv(const float* p) { return VT<vfloat>::load(p); }
inline void storev(float* p, vfloat v) { VT<vfloat>::store(p, v); }

// C[MR x ncols] (+)= A[MR x K] * panel[K x kNR] with NV (1..kNV) vectors of kVW columns computed (the last
// panel of a matrix whose width is not a multiple of kNR needs fewer). A row-major (a(i, k) = A[i * lda + k])
// or, with AT, read transposed in place (a(i, k) = A[k * lda + i]). biasp: kNR values added to every row.
template <int MR, int NV, bool AT>
inline void micro_kernel(int64_t K, const float* __restrict__ A, int64_t lda, const float* __restrict__ bp,
                         float* __restrict__ C, int64_t ldc, int64_t ncols, bool accumulate,
                         const float* __restrict__ biasp) {
  vfloat c[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) c[i][v] = biasp ? loadv(biasp + kVW * v) : vfloat{};
  for (int64_t k = 0; k < K; ++k) {
    vfloat b[NV];
    for (int v = 0; v < NV; ++v) b[v] = loadv(bp + k * kNR + kVW * v);
    for (int i = 0; i < MR; ++i) {
      const float a = AT ? A[k * lda + i] : A[i * lda + k];
      for (int v = 0; v < NV; ++v) c[i][v] += a * b[v];
    }
  }
  if (ncols == kVW * NV) {
    for (int i = 0; i < MR; ++i) {
      float* cr = C + i * ldc;
      for (int v = 0; v < NV; ++v) storev(cr + kVW * v, accumulate ? c[i][v] + loadv(cr + kVW * v) : c[i][v]);
    }
  } else {
    float tmp[kNR];
    for (int i = 0; i < MR; ++i) {
      float* cr = C + i * ldc;
      for (int v = 0; v < NV; ++v) storev(tmp + kVW * v, c[i][v]);
      for (int64_t j = 0; j < ncols; ++j) cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
    }
  }
}

template <int NV, bool AT, int MR = kMR>
void panel_rows_nv(int64_t M, int64_t K, const float* A, int64_t lda, const float* bp, float* C, int64_t ldc,
                   int64_t ncols, bool acc, const float* biasp) {
  const int64_t rs = AT ? 1 : lda;
  int64_t i = 0;
  for (; i + MR <= M; i += MR)
    micro_kernel<MR, NV, AT>(K, A + i * rs, lda, bp, C + i * ldc, ldc, ncols, acc, biasp);
  if constexpr (MR > 1) {
    if (i < M) panel_rows_nv<NV, AT, MR - 1>(M - i, K, A + i * rs, lda, bp, C + i * ldc, ldc, ncols, acc, biasp);
  }
}

// rows [0, M) of C against one packed panel of ncols <= kNR columns
template <bool AT = false>
void panel_rows(int64_t M, int64_t K, const float* A, int64_t lda, const float* bp, float* C, int64_t ldc,
                int64_t ncols, bool acc, const float* biasp = nullptr) {
  const int64_t nv = (ncols + kVW - 1) / kVW;
  if constexpr (kNV >= 3) {
    if (nv >= 3) return panel_rows_nv<3, AT>(M, K, A, lda, bp, C, ldc, ncols, acc, biasp);
  }
  if (nv >= 2) return panel_rows_nv<2, AT>(M, K, A, lda, bp, C, ldc, ncols, acc, biasp);
  panel_rows_nv<1, AT>(M, K, A, lda, bp, C, ldc, ncols, acc, biasp);
}

// below this many multiply-adds a product runs on one thread (a fork/join costs microseconds)
constexpr int64_t kParallelFlops = int64_t(1) << 21;

}  // namespace

void RhsMatrix<float>::init(const float* w, int64_t ldw, bool trans, int64_t K_, int64_t N_) {
  K = K_;
  N = N_;
  panels = (N + kNR - 1) / kNR;
  packed.assign(static_cast<size_t>(panels * K * kNR), 0.0f);
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = packed.data() + p * K * kNR;
    const int64_t n0 = p * kNR, nc = std::min(kNR, N - n0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < nc; ++j) dst[k * kNR + j] = trans ? w[(n0 + j) * ldw + k] : w[k * ldw + n0 + j];
  }
}

void RhsMatrix<float>::mul(int64_t M, const float* A, int64_t lda, float* C, int64_t ldc, bool accumulate,
                           const float* bias) const {
  if (M == 0 || N == 0) return;
  std::vector<float> bias_pad;
  if (bias != nullptr) {
    bias_pad.assign(static_cast<size_t>(panels * kNR), 0.0f);
    std::memcpy(bias_pad.data(), bias, sizeof(float) * N);
  }
  // tiles of (up to) 64 rows x one panel; consecutive tiles share their rows of A
  constexpr int64_t MB = 16 * kMR;
  const int64_t mblocks = (M + MB - 1) / MB, ntiles = mblocks * panels;
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t tile = t0; tile < t1; ++tile) {
      const int64_t p = tile % panels, m0 = (tile / panels) * MB, n0 = p * kNR;
      panel_rows(std::min(MB, M - m0), K, A + m0 * lda, lda, packed.data() + p * K * kNR,
                        C + m0 * ldc + n0, ldc, std::min(kNR, N - n0), accumulate,
                        bias != nullptr ? bias_pad.data() + n0 : nullptr);
    }
  };
  if (M * N * K < kParallelFlops || at::get_num_threads() < 2 || at::in_parallel_region() || ntiles < 2) {
    run(0, ntiles);
  } else {
    at::parallel_for(0, ntiles, 1, run);
  }
}

void gemm_tn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
             double* C, int64_t ldc, bool accumulate) {
  gemm(true, false, M, N, K, 1.0, A, lda, B, ldb, accumulate ? 1.0 : 0.0, C, ldc);
}

void gemm_tn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  constexpr int64_t KC = 256;  // rows of A and B per block: both packed blocks stay in L2
  const int64_t panels = (N + kNR - 1) / kNR, rblocks = (M + kMR - 1) / kMR;
  const int64_t kc_max = std::min(KC, K);
  // rows of the packed A^T are padded off a power-of-two stride, which would map them to a few cache sets
  const int64_t lat = kc_max + 8;
  const bool pack = N >= 128;
  std::vector<float> at(pack ? static_cast<size_t>(M * lat) : 0), bp(static_cast<size_t>(panels * kc_max * kNR), 0.0f);
  const bool par = M * N * K >= kParallelFlops && at::get_num_threads() > 1 && !at::in_parallel_region();
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    // A^T block, at[i][k] = A[k0 + k][i], in strips of 64 columns of A: rows are read contiguously and
    // the 64 destination rows being filled stay in L1. Packing pays off only when each element of A is
    // used for many columns; for narrow B the kernel reads A transposed in place.
    auto pack_a = [&](int64_t s0, int64_t s1) {
      for (int64_t st = s0; st < s1; ++st) {
        const int64_t i0 = st * 64, i1 = std::min(M, i0 + 64);
        for (int64_t k = 0; k < kc; ++k) {
          const float* src = A + (k0 + k) * lda;
          for (int64_t i = i0; i < i1; ++i) at[i * lat + k] = src[i];
        }
      }
    };
    const int64_t strips = (M + 63) / 64;
    if (pack) {
      if (par) at::parallel_for(0, strips, 1, pack_a);
      else pack_a(0, strips);
    }
    // B block in panels: bp[p][k][j] = B[k0 + k][p * kNR + j]
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t n0 = p * kNR, nc = std::min(kNR, N - n0);
      float* dst = bp.data() + p * kc * kNR;
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * kNR, B + (k0 + k) * ldb + n0, sizeof(float) * nc);
    }
    const bool acc = accumulate || k0 > 0;
    auto tiles = [&](int64_t t0, int64_t t1) {
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t p = tile % panels, rb = tile / panels;
        const int64_t i = rb * kMR, mr = std::min<int64_t>(kMR, M - i), n0 = p * kNR;
        if (pack)
          panel_rows(mr, kc, at.data() + i * lat, lat, bp.data() + p * kc * kNR, C + i * ldc + n0, ldc,
                     std::min(kNR, N - n0), acc);
        else
          panel_rows<true>(mr, kc, A + k0 * lda + i, lda, bp.data() + p * kc * kNR, C + i * ldc + n0, ldc,
                           std::min(kNR, N - n0), acc);
      }
    };
    if (par) at::parallel_for(0, panels * rblocks, 1, tiles);
    else tiles(0, panels * rblocks);
  }
}

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
