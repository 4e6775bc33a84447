// Dense-retrieval kernels of the jaxrank native core (CPU):
//
// * jaxrank_ivf_flat (XLA FFI): IVF search over float32 partitions padded to a fixed
//   capacity; list l owns partitions pieces[l] .. pieces[l + 1] - 1 (more than one
//   when build_ivf split an overfull list). Per query: score the list centroids,
//   take the best `nprobe` lists (ties: smaller list), scan their partitions in
//   increasing order in place (no gathered copy) with a running top-k heap, and
//   return the top-k corpus ids. Ties go to the smaller (partition, row) position,
//   like the pure-JAX path.
// * jaxrank_int8_topk (XLA FFI): exact int8 search (VNNI dot products of the
//   native core) fused with a per-query top-k heap; no [B, N] score matrix.
// * jaxrank_pq_topk (XLA FFI): product-quantization search by asymmetric distance
//   tables, fused with the top-k heap.
// * jaxrank_ward_nnchain (plain C, host): Ward agglomeration by the nearest-neighbour
//   chain (O(n^2) time, as SciPy's `linkage(method="ward")`), cut to k clusters.
//
// Runtime ISA dispatch: AVX-512F or AVX2+FMA dot products compiled under target
// attributes, portable loops otherwise (the library is built without -march).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's _mm512_reduce_add_ps trips -Wuninitialized inside the header.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#define JAXRANK_X86 1
#endif

#include "xla/ffi/api/ffi.h"

#include "kernels.h"
#include "parallel.h"

namespace ffi = xla::ffi;

namespace {

// ---------------------------------------------------------------- dot products
// dots4: out[r] = <q, rows + r * d> for r in [0, 4).
using Dots4 = void (*)(const float* q, const float* rows, int64_t d, float* out);
using Dot1 = float (*)(const float* q, const float* row, int64_t d);

float dot1_generic(const float* q, const float* x, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += q[i + j] * x[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < d; ++i) s += q[i] * x[i];
  return s;
}

void dots4_generic(const float* q, const float* rows, int64_t d, float* out) {
  for (int r = 0; r < 4; ++r) out[r] = dot1_generic(q, rows + r * d, d);
}

#ifdef JAXRANK_X86
__attribute__((target("avx2,fma"))) float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) __m256i tail_mask256(int64_t r) {  // first r lanes
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// dot1 accumulates exactly as one lane of dots4 does (same rounding), so that equal
// rows score equally wherever they sit in a partition (exact ties stay ties).
__attribute__((target("avx2,fma"))) float dot1_avx2(const float* q, const float* x, int64_t d) {
  __m256 a0 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i), a0);
  if (i < d) {  // masked tail (no scalar loop: the same rounding as dots4)
    const __m256i m = tail_mask256(d - i);
    a0 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), _mm256_maskload_ps(x + i, m), a0);
  }
  return hsum256(a0);
}

__attribute__((target("avx2,fma"))) void dots4_avx2(const float* q, const float* rows,
                                                     int64_t d, float* out) {
  const float *x0 = rows, *x1 = rows + d, *x2 = rows + 2 * d, *x3 = rows + 3 * d;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 v = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x0 + i), a0);
    a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x1 + i), a1);
    a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x2 + i), a2);
    a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x3 + i), a3);
  }
  if (i < d) {
    const __m256i m = tail_mask256(d - i);
    const __m256 v = _mm256_maskload_ps(q + i, m);
    a0 = _mm256_fmadd_ps(v, _mm256_maskload_ps(x0 + i, m), a0);
    a1 = _mm256_fmadd_ps(v, _mm256_maskload_ps(x1 + i, m), a1);
    a2 = _mm256_fmadd_ps(v, _mm256_maskload_ps(x2 + i, m), a2);
    a3 = _mm256_fmadd_ps(v, _mm256_maskload_ps(x3 + i, m), a3);
  }
  out[0] = hsum256(a0);
  out[1] = hsum256(a1);
  out[2] = hsum256(a2);
  out[3] = hsum256(a3);
}

__attribute__((target("avx512f,fma"))) float dot1_avx512(const float* q, const float* x,
                                                          int64_t d) {
  __m512 a0 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i), a0);
  if (i < d) {  // masked tail (no scalar loop: the same rounding as dots4)
    const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(a0);
}

__attribute__((target("avx512f,fma"))) void dots4_avx512(const float* q, const float* rows,
                                                          int64_t d, float* out) {
  const float *x0 = rows, *x1 = rows + d, *x2 = rows + 2 * d, *x3 = rows + 3 * d;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m512 v = _mm512_loadu_ps(q + i);
    a0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x0 + i), a0);
    a1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x1 + i), a1);
    a2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x2 + i), a2);
    a3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x3 + i), a3);
  }
  if (i < d) {
    const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(m, q + i);
    a0 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x0 + i), a0);
    a1 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x1 + i), a1);
    a2 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x2 + i), a2);
    a3 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x3 + i), a3);
  }
  out[0] = _mm512_reduce_add_ps(a0);
  out[1] = _mm512_reduce_add_ps(a1);
  out[2] = _mm512_reduce_add_ps(a2);
  out[3] = _mm512_reduce_add_ps(a3);
}
#endif

struct DotFns {
  Dot1 dot1;
  Dots4 dots4;
};

const DotFns& dot_fns() {
  static const DotFns fns = [] {
#ifdef JAXRANK_X86
    const char* env = std::getenv("JAXRANK_ISA");
    const bool generic = env && (!std::strcmp(env, "generic") || !std::strcmp(env, "portable"));
    const bool cap_avx2 = env && !std::strcmp(env, "avx2");
    if (!generic && !cap_avx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("fma"))
      return DotFns{dot1_avx512, dots4_avx512};
    if (!generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return DotFns{dot1_avx2, dots4_avx2};
#endif
    return DotFns{dot1_generic, dots4_generic};
  }();
  return fns;
}

// ---------------------------------------------------------------- top-k heap
// Best first: score descending, then position ascending (the order of every result).
bool best_first(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Min-heap of the best k (score, position); the root is the worst kept entry. Entries
// arrive in increasing position, so an equal score never displaces a kept one.
struct TopK {
  int64_t k;
  std::vector<std::pair<float, int64_t>> h;
  static bool worse(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
  explicit TopK(int64_t k_) : k(k_) { h.reserve(k_); }
  float threshold() const {
    return static_cast<int64_t>(h.size()) < k ? -std::numeric_limits<float>::infinity()
                                              : h.front().first;
  }
  bool full() const { return static_cast<int64_t>(h.size()) >= k; }
  void push(float s, int64_t pos) {
    if (!full()) {
      h.emplace_back(s, pos);
      std::push_heap(h.begin(), h.end(), worse);
    } else if (s > h.front().first) {
      std::pop_heap(h.begin(), h.end(), worse);
      h.back() = {s, pos};
      std::push_heap(h.begin(), h.end(), worse);
    }
  }
  void sorted(std::vector<std::pair<float, int64_t>>* out) const {
    *out = h;
    std::sort(out->begin(), out->end(), best_first);
  }
};

using jaxrank::parallel_for;

// q [Q, D], centroids [L, D], pieces [L + 1] s32, vectors [P, cap, D] f32,
// where [P, cap] pred, ids [P, cap] s32 -> scores [Q, k] f32, ids [Q, k] s32, valid [Q, k].
ffi::Error IvfFlatImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q,
                       ffi::Buffer<ffi::F32> centroids, ffi::Buffer<ffi::S32> pieces,
                       ffi::Buffer<ffi::F32> vectors, ffi::Buffer<ffi::PRED> where,
                       ffi::Buffer<ffi::S32> ids,
                       ffi::ResultBuffer<ffi::F32> out_s, ffi::ResultBuffer<ffi::S32> out_i,
                       ffi::ResultBuffer<ffi::PRED> out_v, int64_t nprobe, int64_t normalize,
                       int64_t num_threads) {
  const auto qd = q.dimensions(), cd = centroids.dimensions(), vd = vectors.dimensions();
  const auto od = out_s->dimensions();
  if (qd.size() != 2 || cd.size() != 2 || vd.size() != 3 || od.size() != 2)
    return ffi::Error::InvalidArgument("jaxrank native ivf_flat: operand ranks");
  const int64_t Q = qd[0], D = qd[1], L = cd[0], P = vd[0], cap = vd[1], k = od[1];
  if (cd[1] != D || vd[2] != D || od[0] != Q || nprobe < 1 || nprobe > L ||
      pieces.dimensions()[0] != L + 1 || where.dimensions()[0] != P ||
      where.dimensions()[1] != cap)
    return ffi::Error::InvalidArgument("jaxrank native ivf_flat: shape mismatch");
  const int32_t* pc = pieces.typed_data();
  for (int64_t l = 0; l < L; ++l)
    if (pc[l] < 0 || pc[l] >= pc[l + 1] || pc[l + 1] > P)
      return ffi::Error::InvalidArgument("jaxrank native ivf_flat: bad list pieces");
  const float* qb = q.typed_data();
  const float* cb = centroids.typed_data();
  const float* vb = vectors.typed_data();
  const bool* wb = where.typed_data();
  const int32_t* ib = ids.typed_data();
  float* os = out_s->typed_data();
  int32_t* oi = out_i->typed_data();
  bool* ov = out_v->typed_data();
  const DotFns& fn = dot_fns();
  const float ninf = -std::numeric_limits<float>::infinity();

  // Queries go in blocks of up to kBlock; a block scans its probed partitions in
  // increasing order, each partition once for all the block's queries that probe it,
  // kRows rows at a time (the rows stay in L1/L2 while every such query scores them).
  constexpr int64_t kBlock = 32, kRows = 32;
  auto block = [&](int64_t bi) {
    const int64_t q0 = bi * kBlock, q1 = std::min(Q, q0 + kBlock), nq = q1 - q0;
    std::vector<float> unit(nq * D);
    std::vector<int32_t> probes(nq * nprobe);  // lists
    std::vector<float> cs(L);
    std::vector<int32_t> order(L);
    for (int64_t t = 0; t < nq; ++t) {
      const float* qv = qb + (q0 + t) * D;
      float* u = unit.data() + t * D;
      std::copy(qv, qv + D, u);
      if (normalize) {  // cosine: q / |q| (a zero query stays zero)
        double ss = 0;
        for (int64_t j = 0; j < D; ++j) ss += double(u[j]) * u[j];
        const float nrm = static_cast<float>(std::sqrt(ss));
        if (nrm > 0)
          for (int64_t j = 0; j < D; ++j) u[j] /= nrm;
      }
      // coarse: the nprobe best partitions (score descending, then index)
      int64_t p = 0;
      for (; p + 4 <= L; p += 4) fn.dots4(u, cb + p * D, D, cs.data() + p);
      for (; p < L; ++p) cs[p] = fn.dot1(u, cb + p * D, D);
      for (auto& s : cs)
        if (std::isnan(s)) s = ninf;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + nprobe, order.end(),
                        [&](int32_t a, int32_t b) {
                          return cs[a] > cs[b] || (cs[a] == cs[b] && a < b);
                        });
      std::copy(order.begin(), order.begin() + nprobe, probes.begin() + t * nprobe);
    }
    // partition -> the block's queries probing it (CSR, partitions ascending)
    std::vector<int32_t> start(P + 1, 0);
    for (int32_t l : probes)
      for (int32_t p = pc[l]; p < pc[l + 1]; ++p) ++start[p + 1];
    for (int64_t p = 0; p < P; ++p) start[p + 1] += start[p];
    std::vector<int32_t> members(start[P]);
    {
      std::vector<int32_t> fill(start.begin(), start.end() - 1);
      for (int64_t t = 0; t < nq; ++t)
        for (int64_t j = 0; j < nprobe; ++j) {
          const int32_t l = probes[t * nprobe + j];
          for (int32_t p = pc[l]; p < pc[l + 1]; ++p) members[fill[p]++] = int32_t(t);
        }
    }
    std::vector<TopK> tops;
    tops.reserve(nq);
    for (int64_t t = 0; t < nq; ++t) tops.emplace_back(k);
    float s4[4];
    for (int64_t part = 0; part < P; ++part) {
      if (start[part] == start[part + 1]) continue;
      const float* base = vb + part * cap * D;
      const bool* w = wb + part * cap;
      const int64_t pos0 = part * cap;
      int64_t used = cap;  // rows are packed at the front of a partition; padding follows
      while (used > 0 && !w[used - 1]) --used;
      for (int64_t r0 = 0; r0 < used; r0 += kRows) {
        const int64_t r1 = std::min(used, r0 + kRows);
        for (int32_t m = start[part]; m < start[part + 1]; ++m) {
          const int64_t t = members[m];
          const float* u = unit.data() + t * D;
          TopK& top = tops[t];
          int64_t r = r0;
          for (; r + 4 <= r1; r += 4) {
            // software prefetch of the row group 8 rows ahead: 1M x 384 synthetic, batch 1,
            // nprobe 1, median per query 187 -> 157 us (4 ahead: 157, 16: 166; FAISS 113)
            if (r + 12 <= used) {
              const char* pf = reinterpret_cast<const char*>(base + (r + 8) * D);
              for (int64_t off = 0; off < 4 * D * int64_t(sizeof(float)); off += 64)
                __builtin_prefetch(pf + off);
            }
            fn.dots4(u, base + r * D, D, s4);
            for (int j = 0; j < 4; ++j)
              if (w[r + j] && s4[j] > ninf) top.push(s4[j], pos0 + r + j);
          }
          for (; r < r1; ++r) {
            if (!w[r]) continue;
            const float sc = fn.dot1(u, base + r * D, D);
            if (sc > ninf) top.push(sc, pos0 + r);  // NaN and -inf: never returned
          }
        }
      }
    }
    std::vector<std::pair<float, int64_t>> best;
    for (int64_t t = 0; t < nq; ++t) {
      tops[t].sorted(&best);
      const int64_t qi = q0 + t;
      for (int64_t j = 0; j < k; ++j) {
        const bool ok = j < static_cast<int64_t>(best.size());
        os[qi * k + j] = ok ? best[j].first : ninf;
        oi[qi * k + j] = ok ? ib[best[j].second] : 0;
        ov[qi * k + j] = ok;
      }
    }
  };
  const int64_t threads =
      num_threads > 0 ? num_threads : std::max<int64_t>(1, pool.num_threads());
  parallel_for(pool, (Q + kBlock - 1) / kBlock, threads, block);
  return ffi::Error::Success();
}

// Top-k of B queries over N rows, shared by the fused scan kernels. Work items are
// (16-query block, row chunk) pairs: scan(b0, b1, r0, r1, tops) pushes the scores of
// rows [r0, r1) into tops[b - b0] (rows in increasing order, so an equal score never
// displaces a kept row). Jobs under `small_work` (in the caller's units) run on the
// calling thread, since waking the pool costs more; larger ones are cut into about 4
// items per thread. The per-chunk heaps are merged at the end: best first, unfilled
// slots -inf, id 0, invalid.
template <class Scan>
void chunked_topk(ffi::ThreadPool& pool, int64_t B, int64_t N, int64_t k, int64_t work,
                  int64_t small_work, int64_t num_threads, const Scan& scan, float* os,
                  int32_t* oi, bool* ov) {
  constexpr int64_t kQB = 16, kTile = 256;
  const bool small = work < small_work;
  const int64_t threads =
      small ? 1 : (num_threads > 0 ? num_threads : std::max<int64_t>(1, pool.num_threads()));
  const int64_t n_qb = (B + kQB - 1) / kQB;
  const int64_t want = small ? 1 : 4 * threads;  // items wanted
  int64_t n_chunks = std::clamp<int64_t>((want + n_qb - 1) / n_qb, 1, (N + kTile - 1) / kTile);
  const int64_t chunk = ((N + n_chunks - 1) / n_chunks + kTile - 1) / kTile * kTile;
  n_chunks = (N + chunk - 1) / chunk;
  std::vector<std::vector<std::pair<float, int64_t>>> found(n_chunks * B);
  auto item = [&](int64_t it) {
    const int64_t b0 = (it / n_chunks) * kQB, b1 = std::min(B, b0 + kQB);
    const int64_t c = it % n_chunks, r0 = c * chunk, r1 = std::min(N, r0 + chunk);
    std::vector<TopK> tops;
    tops.reserve(b1 - b0);
    for (int64_t b = b0; b < b1; ++b) tops.emplace_back(k);
    scan(b0, b1, r0, r1, tops);
    for (int64_t b = b0; b < b1; ++b) found[c * B + b] = std::move(tops[b - b0].h);
  };
  if (threads == 1) {
    for (int64_t it = 0; it < n_qb * n_chunks; ++it) item(it);
  } else {
    parallel_for(pool, n_qb * n_chunks, threads, item);
  }
  std::vector<std::pair<float, int64_t>> all;
  for (int64_t b = 0; b < B; ++b) {
    all.clear();
    for (int64_t c = 0; c < n_chunks; ++c)
      all.insert(all.end(), found[c * B + b].begin(), found[c * B + b].end());
    const int64_t got = std::min<int64_t>(k, all.size());
    std::partial_sort(all.begin(), all.begin() + got, all.end(), best_first);
    for (int64_t j = 0; j < k; ++j) {
      const bool ok = j < got;
      os[b * k + j] = ok ? all[j].first : -std::numeric_limits<float>::infinity();
      oi[b * k + j] = ok ? static_cast<int32_t>(all[j].second) : 0;
      ov[b * k + j] = ok;
    }
  }
}

// Exact int8 search fused with its top-k: q [B, D] f32 (quantized here), codes [N, D] s8,
// scales [N] f32 -> scores [B, k] f32, ids [B, k] s32, valid [B, k] pred. The score of
// row n is float(dot_i8(qc_b, codes_n)) * (qs_b * scales_n), the pure-JAX path's
// float32 operations in the same order (bit-identical); NaN and -inf scores are never
// returned, ties go to the smaller row. Split and merged by chunked_topk (jobs under
// 2^22 multiply-adds on the calling thread).
ffi::Error Int8TopkImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q,
                        ffi::Buffer<ffi::S8> codes, ffi::Buffer<ffi::F32> scales,
                        ffi::ResultBuffer<ffi::F32> out_s, ffi::ResultBuffer<ffi::S32> out_i,
                        ffi::ResultBuffer<ffi::PRED> out_v, int64_t num_threads) {
  const auto qd = q.dimensions(), cd = codes.dimensions(), od = out_s->dimensions();
  if (qd.size() != 2 || cd.size() != 2 || od.size() != 2)
    return ffi::Error::InvalidArgument("jaxrank native int8_topk: operand ranks");
  const int64_t B = qd[0], D = qd[1], N = cd[0], k = od[1];
  if (cd[1] != D || od[0] != B || scales.dimensions()[0] != N || k < 1 || k > N)
    return ffi::Error::InvalidArgument("jaxrank native int8_topk: shape mismatch");
  if (D > 65793)
    return ffi::Error::InvalidArgument("jaxrank native int8_topk: D > 65793 overflows int32");
  if (B == 0) return ffi::Error::Success();
  // queries quantized as jaxrank.quant.quantize_int8, in its float32 operations:
  // scale = max|q| * f32(1/127), codes = clip(round_half_even(q * (1 / scale)), -127,
  // 127) (1 / 1 for a zero query; NaN codes 0; a NaN query has scale NaN, so every
  // score is NaN and nothing is returned)
  std::vector<int8_t> qcodes(B * D);
  std::vector<float> qscale(B);
  for (int64_t b = 0; b < B; ++b) {
    const float* x = q.typed_data() + b * D;
    float amax = 0.0f;
    for (int64_t j = 0; j < D; ++j) {
      const float a = std::fabs(x[j]);
      amax = (std::isnan(a) || std::isnan(amax)) ? std::numeric_limits<float>::quiet_NaN()
                                                  : std::max(amax, a);
    }
    const float scale = amax * static_cast<float>(1.0 / 127.0);
    const float inv = 1.0f / (scale > 0 ? scale : 1.0f);
    for (int64_t j = 0; j < D; ++j) {
      const float r = std::nearbyint(x[j] * inv);
      qcodes[b * D + j] =
          std::isnan(r) ? 0 : static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
    }
    qscale[b] = scale;
  }
  const int8_t* qb = qcodes.data();
  const float* qsb = qscale.data();
  const int8_t* cb = codes.typed_data();
  const float* sb = scales.typed_data();
  const auto& kern = jaxrank::best_kernels();
  const float ninf = -std::numeric_limits<float>::infinity();
  constexpr int64_t kTile = 256;  // rows per dot_i8 call
  auto scan = [&](int64_t b0, int64_t b1, int64_t r0, int64_t r1, std::vector<TopK>& tops) {
    const int64_t nq = b1 - b0;
    std::vector<int32_t> dots(nq * kTile);
    for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
      const int64_t m = std::min(r1, t0 + kTile) - t0;
      kern.dot_i8(qb + b0 * D, nq, D, cb + t0 * D, 0, m, dots.data(), kTile);
      for (int64_t t = 0; t < nq; ++t) {
        const float sq = qsb[b0 + t];
        const int32_t* row = dots.data() + t * kTile;
        TopK& top = tops[t];
        for (int64_t j = 0; j < m; ++j) {
          const float s = static_cast<float>(row[j]) * (sq * sb[t0 + j]);
          if (s > ninf && (!top.full() || s > top.threshold())) top.push(s, t0 + j);
        }
      }
    }
  };
  chunked_topk(pool, B, N, k, B * N * D, int64_t{1} << 22, num_threads, scan,
               out_s->typed_data(), out_i->typed_data(), out_v->typed_data());
  return ffi::Error::Success();
}

// PQ search by asymmetric distance tables, fused with its top-k: tables [B, M, K] f32
// (each query's score against centroid j of subspace m), codes [N, M] u8 -> scores
// [B, k], ids [B, k], valid [B, k]. score(n) = ((T[0][c_n0] + T[1][c_n1]) + ...) in
// float32, subspace by subspace (the pure-JAX path's order: bit-identical); 8 rows at
// a time with independent sums. NaN/-inf never returned; ties to the smaller row.
// Split and merged by chunked_topk (jobs under 2^20 table lookups on the calling thread).
ffi::Error PqTopkImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> tables,
                      ffi::Buffer<ffi::U8> codes, ffi::ResultBuffer<ffi::F32> out_s,
                      ffi::ResultBuffer<ffi::S32> out_i, ffi::ResultBuffer<ffi::PRED> out_v,
                      int64_t num_threads) {
  const auto td = tables.dimensions(), cd = codes.dimensions(), od = out_s->dimensions();
  if (td.size() != 3 || cd.size() != 2 || od.size() != 2)
    return ffi::Error::InvalidArgument("jaxrank native pq_topk: operand ranks");
  const int64_t B = td[0], M = td[1], K = td[2], N = cd[0], k = od[1];
  if (cd[1] != M || od[0] != B || K < 1 || K > 256 || k < 1 || k > N)
    return ffi::Error::InvalidArgument("jaxrank native pq_topk: shape mismatch");
  if (B == 0) return ffi::Error::Success();
  const float* tb = tables.typed_data();
  const uint8_t* cb = codes.typed_data();
  const float ninf = -std::numeric_limits<float>::infinity();
  if (K < 256)  // a code past K would read outside the table (uint8 codes: K = 256 is safe)
    for (int64_t i = 0; i < N * M; ++i)
      if (cb[i] >= K) return ffi::Error::InvalidArgument("jaxrank native pq_topk: code >= K");
  constexpr int64_t kR = 8;  // rows summed together (independent float chains)
  auto scan = [&](int64_t b0, int64_t b1, int64_t r0, int64_t r1, std::vector<TopK>& tops) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* t = tb + b * M * K;
      TopK& top = tops[b - b0];
      int64_t r = r0;
      float acc[kR];
      for (; r + kR <= r1; r += kR) {
        const uint8_t* c = cb + r * M;
        for (int64_t j = 0; j < kR; ++j) acc[j] = 0.0f;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t j = 0; j < kR; ++j) acc[j] += t[m * K + c[j * M + m]];
        for (int64_t j = 0; j < kR; ++j)
          if (acc[j] > ninf && (!top.full() || acc[j] > top.threshold())) top.push(acc[j], r + j);
      }
      for (; r < r1; ++r) {
        const uint8_t* c = cb + r * M;
        float s = 0.0f;
        for (int64_t m = 0; m < M; ++m) s += t[m * K + c[m]];
        if (s > ninf && (!top.full() || s > top.threshold())) top.push(s, r);
      }
    }
  };
  chunked_topk(pool, B, N, k, B * N * M, int64_t{1} << 20, num_threads, scan,
               out_s->typed_data(), out_i->typed_data(), out_v->typed_data());
  return ffi::Error::Success();
}

}  // namespace

#define JAXRANK_EXPORT __attribute__((visibility("default")))
extern "C" {
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_ivf_flat(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_int8_topk(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_pq_topk(XLA_FFI_CallFrame*);
JAXRANK_EXPORT int jaxrank_ward_nnchain(const float* d2, int64_t n, int64_t k, int32_t* labels);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_ivf_flat, IvfFlatImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // queries [Q, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // centroids [L, D]
                                  .Arg<ffi::Buffer<ffi::S32>>()   // pieces [L + 1]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // vectors [P, cap, D]
                                  .Arg<ffi::Buffer<ffi::PRED>>()  // where [P, cap]
                                  .Arg<ffi::Buffer<ffi::S32>>()   // ids [P, cap]
                                  .Ret<ffi::Buffer<ffi::F32>>()   // scores [Q, k]
                                  .Ret<ffi::Buffer<ffi::S32>>()   // ids [Q, k]
                                  .Ret<ffi::Buffer<ffi::PRED>>()  // valid [Q, k]
                                  .Attr<int64_t>("nprobe")
                                  .Attr<int64_t>("normalize")
                                  .Attr<int64_t>("num_threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_int8_topk, Int8TopkImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // queries [B, D]
                                  .Arg<ffi::Buffer<ffi::S8>>()    // corpus codes [N, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // corpus scales [N]
                                  .Ret<ffi::Buffer<ffi::F32>>()   // scores [B, k]
                                  .Ret<ffi::Buffer<ffi::S32>>()   // ids [B, k]
                                  .Ret<ffi::Buffer<ffi::PRED>>()  // valid [B, k]
                                  .Attr<int64_t>("num_threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_pq_topk, PqTopkImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // tables [B, M, K]
                                  .Arg<ffi::Buffer<ffi::U8>>()    // codes [N, M]
                                  .Ret<ffi::Buffer<ffi::F32>>()   // scores [B, k]
                                  .Ret<ffi::Buffer<ffi::S32>>()   // ids [B, k]
                                  .Ret<ffi::Buffer<ffi::PRED>>()  // valid [B, k]
                                  .Attr<int64_t>("num_threads"));

// Ward clustering of n points given their squared Euclidean distances d2 [n, n]
// (row-major float32), cut to k clusters: labels[i] = smallest point index of i's
// cluster. Nearest-neighbour chain as SciPy's `_hierarchy.nn_chain` (prefer the
// previous chain element; strict `<` scan in index order; the merged cluster takes
// the larger slot), Lance-Williams updates in double on squared distances; the n-1
// merges are then sorted by height (stable) and the first n-k applied with a
// union-find. Returns 0, or -1 on bad arguments.
int jaxrank_ward_nnchain(const float* d2, int64_t n, int64_t k, int32_t* labels) {
  if (n < 0 || k < 1 || (n > 0 && k > n) || (n > 0 && (!d2 || !labels))) return -1;
  if (n == 0) return 0;
  std::vector<double> D(n * n);
  for (int64_t i = 0; i < n * n; ++i) D[i] = std::max(0.0, static_cast<double>(d2[i]));
  std::vector<int64_t> size(n, 1), chain;
  chain.reserve(n);
  struct Merge {
    double h;
    int64_t a, b;
  };
  std::vector<Merge> merges;
  merges.reserve(n - 1);
  for (int64_t step = 0; step < n - 1; ++step) {
    if (chain.empty()) {
      for (int64_t i = 0; i < n; ++i)
        if (size[i] > 0) {
          chain.push_back(i);
          break;
        }
    }
    int64_t x, y;
    double cur;
    for (;;) {
      x = chain.back();
      const int64_t m = static_cast<int64_t>(chain.size());
      if (m > 1) {
        y = chain[m - 2];
        cur = D[x * n + y];
      } else {
        y = -1;
        cur = std::numeric_limits<double>::infinity();
      }
      const double* row = D.data() + x * n;
      for (int64_t i = 0; i < n; ++i) {
        if (size[i] == 0 || i == x) continue;
        if (row[i] < cur) {
          cur = row[i];
          y = i;
        }
      }
      if (y < 0) {  // only non-finite distances left: take any other active cluster
        for (int64_t i = 0; i < n; ++i)
          if (size[i] > 0 && i != x) {
            y = i;
            break;
          }
        cur = D[x * n + y];
      }
      if (m > 1 && y == chain[m - 2]) break;
      chain.push_back(y);
    }
    chain.pop_back();
    chain.pop_back();
    if (x > y) std::swap(x, y);
    const double nx = double(size[x]), ny = double(size[y]);
    merges.push_back({cur, x, y});
    size[x] = 0;
    size[y] = int64_t(nx + ny);
    for (int64_t i = 0; i < n; ++i) {
      if (size[i] == 0 || i == y) continue;
      const double ni = double(size[i]);
      const double v = std::max(
          0.0, ((ni + nx) * D[i * n + x] + (ni + ny) * D[i * n + y] - ni * cur) / (nx + ny + ni));
      D[i * n + y] = v;
      D[y * n + i] = v;
    }
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.h < b.h; });
  std::vector<int64_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t i) {
    while (parent[i] != i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  for (int64_t t = 0; t < n - k; ++t) {
    const int64_t a = find(merges[t].a), b = find(merges[t].b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // root = smallest index
  }
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(find(i));
  return 0;
}

// XLA FFI wrapper of jaxrank_ward_nnchain for a batch of documents (what pool_tokens
// calls on CPU): d2 [B, n, n] f32 squared distances, valid [B, n] pred, num_clusters [B]
// s32 -> labels [B, n] s32 (a valid row's label is the smallest valid row index of its
// cluster; invalid rows get -1). Each document's valid rows are clustered on their own
// (k clipped to [1, valid rows]); documents are spread over XLA's CPU thread pool.
namespace {

ffi::Error WardPoolImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> d2,
                        ffi::Buffer<ffi::PRED> valid, ffi::Buffer<ffi::S32> num_clusters,
                        ffi::ResultBuffer<ffi::S32> labels) {
  const auto dims = d2.dimensions();
  if (dims.size() != 3 || dims[1] != dims[2])
    return ffi::Error::InvalidArgument("jaxrank_ward_pool: d2 must be [B, n, n]");
  const int64_t B = dims[0], n = dims[1];
  const auto vd = valid.dimensions();
  if (vd.size() != 2 || vd[0] != B || vd[1] != n)
    return ffi::Error::InvalidArgument("jaxrank_ward_pool: valid must be [B, n]");
  if (num_clusters.element_count() != static_cast<size_t>(B))
    return ffi::Error::InvalidArgument("jaxrank_ward_pool: num_clusters must be [B]");
  const float* dp = d2.typed_data();
  const bool* vp = valid.typed_data();
  const int32_t* kp = num_clusters.typed_data();
  int32_t* out = labels->typed_data();
  std::atomic<bool> failed{false};
  auto one = [&](int64_t b) {
    const bool* vb = vp + b * n;
    int32_t* ob = out + b * n;
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < n; ++i) {
      ob[i] = -1;
      if (vb[i]) idx.push_back(i);
    }
    const int64_t m = static_cast<int64_t>(idx.size());
    if (m == 0) return;
    std::vector<float> sub(m * m);
    const float* db = dp + b * n * n;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < m; ++c) sub[r * m + c] = db[idx[r] * n + idx[c]];
    const int64_t k = std::min<int64_t>(std::max<int64_t>(kp[b], 1), m);
    std::vector<int32_t> lab(m);
    if (jaxrank_ward_nnchain(sub.data(), m, k, lab.data()) != 0) {
      failed = true;
      return;
    }
    for (int64_t r = 0; r < m; ++r) ob[idx[r]] = static_cast<int32_t>(idx[lab[r]]);
  };
  parallel_for(pool, B, 0, one);
  if (failed) return ffi::Error::Internal("jaxrank_ward_pool: bad arguments");
  return ffi::Error::Success();
}

}  // namespace

extern "C" {
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_ward_pool(XLA_FFI_CallFrame*);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_ward_pool, WardPoolImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // d2 [B, n, n]
                                  .Arg<ffi::Buffer<ffi::PRED>>()  // valid [B, n]
                                  .Arg<ffi::Buffer<ffi::S32>>()   // num_clusters [B]
                                  .Ret<ffi::Buffer<ffi::S32>>());  // labels [B, n]
