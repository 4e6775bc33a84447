// AVX-512 path (F/BW/VL/DQ + VNNI; VPOPCNTDQ for Hamming when present).
//
// MaxSim: query tokens are the lanes (16 per zmm, up to 4 zmm = 64 tokens per
// chunk), packed once per call as [d][lanes]; every document token is
// broadcast straight from its row (embedded-broadcast FMA), so documents are
// read in their natural [Ld, d] layout and the max over document tokens is a
// lane-wise compare/blend.
//
// f32 / bf16 from 32 / 256 query tokens per call: int8 screening with exact
// f32 rescoring (maxsim_screened below; the bound is derived in the README).
//
// int8 uses VPDPBUSD (u8 x s8 -> s32, four products per lane, no
// saturation). The query side is the u8 operand, stored as q + 128; the
// document side is the s8 (broadcast) operand, used as is. Then
//   acc = sum_k (q_k + 128) d_k = dot(q, d) + 128 * sum_k d_k
// and the exact dot is acc - 128 * dsum_j with dsum_j computed once per
// document token. Bounds: |(q+128) d| <= 255 * 128 = 32640, so acc cannot
// overflow int32 for d <= 65,793 (2^31 / 32640); the kernel entry rejects
// larger d (see jaxrank_ffi.cc). Codes may include -128 on both sides.
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vpopcntdq,avx512bf16,fma,popcnt,bmi2")
namespace {

template <class T>
struct Buf {
  T* p = nullptr;
  explicit Buf(int64_t n) : p(n > 0 ? new T[n] : nullptr) {}
  ~Buf() { delete[] p; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int kMaxQV = 4;  // zmm per query chunk -> 64 query tokens
// Query tokens per call (rows x Lq) from which f32 MaxSim uses int8 screening.
constexpr int64_t kScreenMinTokens = 32;
constexpr int64_t kScreenMinTokensBf16 = 256;

// Software prefetch of the rows of the next register block: document rows are
// walked T at a time, 4 bytes per step, which the hardware prefetcher does not
// run ahead of well enough (measured 3x slower than an L2-resident copy).
inline void prefetch_rows(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}
// f32 documents (the largest stream) are prefetched into L2 one whole document
// ahead: measured 65 -> 84 GFLOP/s (CPU time) at B=1, Ld=180, D=128 on Zen 4;
// T0 at any distance, or NTA, gave no gain.
inline void prefetch_rows_l2(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T1);
}

inline void upd(__m512 a, int32_t j, __m512& mx, __m512i& am) {
  const __mmask16 gt = _mm512_cmp_ps_mask(a, mx, _CMP_GT_OQ);
  mx = _mm512_mask_mov_ps(mx, gt, a);
  am = _mm512_mask_mov_epi32(am, gt, _mm512_set1_epi32(j));
}

// ---------------------------------------------------------------- f32 --
// acc += a * b (inline asm for the same register allocation reason as dpbusd).
inline void fma_ps(__m512& acc, __m512 a, __m512 b) {
  __asm__("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

template <int QV, int T>
inline void blk_f32(const float* qp, int64_t d, const float* doc, __m512 (&out)[T][QV]) {
  __m512 acc[T][QV];  // local: see blk_i8
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    __m512 qv[QV];
    for (int v = 0; v < QV; ++v) qv[v] = _mm512_loadu_ps(qp + (k * QV + v) * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 b = _mm512_set1_ps(doc[t * d + k]);
      for (int v = 0; v < QV; ++v) fma_ps(acc[t][v], qv[v], b);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) out[t][v] = acc[t][v];
}

template <int QV>
void core_f32(const float* qp, int64_t d, const float* doc, int64_t len, const uint8_t* dm,
              __m512* mx_out, __m512i* am_out, int64_t pf_ahead) {
  constexpr int T = QV == 1 ? 12 : QV == 2 ? 12 : QV == 3 ? 7 : 6;
  __m512 mx[QV];
  __m512i am[QV];
  for (int v = 0; v < QV; ++v) {
    mx[v] = _mm512_set1_ps(-__builtin_inff());
    am[v] = _mm512_setzero_si512();
  }
  int64_t j = 0;
  for (; j + T <= len; j += T) {
    __m512 acc[T][QV];
    // Prefetch never faults, so running past the last document is harmless.
    prefetch_rows_l2(doc + pf_ahead + j * d, T * d * 4);
    blk_f32<QV, T>(qp, d, doc + j * d, acc);
    for (int t = 0; t < T; ++t) {
      if (dm && !dm[j + t]) continue;
      for (int v = 0; v < QV; ++v) upd(acc[t][v], static_cast<int32_t>(j + t), mx[v], am[v]);
    }
  }
  for (; j < len; ++j) {
    if (dm && !dm[j]) continue;
    __m512 acc[1][QV];
    blk_f32<QV, 1>(qp, d, doc + j * d, acc);
    for (int v = 0; v < QV; ++v) upd(acc[0][v], static_cast<int32_t>(j), mx[v], am[v]);
  }
  for (int v = 0; v < QV; ++v) {
    mx_out[v] = mx[v];
    am_out[v] = am[v];
  }
}

// ---------------------------------------------------------------- int8 --
// acc += dpbusd(u8 a, s8 b). Inline asm: with the intrinsic GCC 12 kept the
// register-blocked accumulators in memory (a store per instruction).
inline void dpbusd(__m512i& acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

template <int QV, int T>
inline void blk_i8(const uint32_t* qp, int64_t d4, const uint8_t* doc, int64_t stride,
                   __m512i (&out)[T][QV]) {
  // Local accumulators: `out` could alias the byte-typed document pointer, which
  // made GCC store every accumulator after each instruction.
  __m512i acc[T][QV];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_setzero_si512();
  for (int64_t k = 0; k < d4; ++k) {
    __m512i qv[QV];
    for (int v = 0; v < QV; ++v) qv[v] = _mm512_loadu_si512(qp + (k * QV + v) * 16);
    for (int t = 0; t < T; ++t) {
      int32_t w;
      memcpy(&w, doc + t * stride + 4 * k, 4);
      const __m512i b = _mm512_set1_epi32(w);
      for (int v = 0; v < QV; ++v) dpbusd(acc[t][v], qv[v], b);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) out[t][v] = acc[t][v];
}

template <int QV>
void core_i8(const uint32_t* qp, int64_t d4, const uint8_t* doc, int64_t stride, int64_t len,
             const uint8_t* dm, const int32_t* dsum, const float* ds, __m512* mx_out,
             __m512i* am_out) {
  constexpr int T = QV == 1 ? 12 : QV == 2 ? 12 : QV == 3 ? 7 : 6;
  __m512 mx[QV];
  __m512i am[QV];
  for (int v = 0; v < QV; ++v) {
    mx[v] = _mm512_set1_ps(-__builtin_inff());
    am[v] = _mm512_setzero_si512();
  }
  auto finish = [&](__m512i a, int64_t j, int v) {
    const __m512i dot = _mm512_sub_epi32(a, _mm512_set1_epi32(128 * dsum[j]));
    const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(ds[j]));
    upd(f, static_cast<int32_t>(j), mx[v], am[v]);
  };
  int64_t j = 0;
  for (; j + T <= len; j += T) {
    __m512i acc[T][QV];
    prefetch_rows(doc + (j + T) * stride, T * stride);
    blk_i8<QV, T>(qp, d4, doc + j * stride, stride, acc);
    for (int t = 0; t < T; ++t) {
      if (dm && !dm[j + t]) continue;
      for (int v = 0; v < QV; ++v) finish(acc[t][v], j + t, v);
    }
  }
  for (; j < len; ++j) {
    if (dm && !dm[j]) continue;
    __m512i acc[1][QV];
    blk_i8<QV, 1>(qp, d4, doc + j * stride, stride, acc);
    for (int v = 0; v < QV; ++v) finish(acc[0][v], j, v);
  }
  for (int v = 0; v < QV; ++v) {
    mx_out[v] = mx[v];
    am_out[v] = am[v];
  }
}

// ---------------------------------------------------------------- bf16 --
// VDPBF16PS (AVX512_BF16): acc += a.bf16[2i] * b.bf16[2i] + a.bf16[2i+1] * b.bf16[2i+1]
// per f32 lane, so one instruction does two dimensions; the query pack holds
// dimension pairs per lane and each document token broadcasts one pair. Used
// only when the CPU reports AVX512_BF16 (the conversion path otherwise).
inline void dpbf16(__m512& acc, __m512i a, __m512i b) {
  __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

template <int QV, int T>
inline void blk_bf16(const uint32_t* qp, int64_t d2, const uint16_t* doc, int64_t stride,
                     __m512 (&out)[T][QV]) {
  __m512 acc[T][QV];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d2; ++k) {
    __m512i qv[QV];
    for (int v = 0; v < QV; ++v) qv[v] = _mm512_loadu_si512(qp + (k * QV + v) * 16);
    for (int t = 0; t < T; ++t) {
      int32_t w;
      memcpy(&w, doc + t * stride + 2 * k, 4);
      const __m512i b = _mm512_set1_epi32(w);
      for (int v = 0; v < QV; ++v) dpbf16(acc[t][v], qv[v], b);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) out[t][v] = acc[t][v];
}

template <int QV>
void core_bf16(const uint32_t* qp, int64_t d2, const uint16_t* doc, int64_t stride, int64_t len,
               const uint8_t* dm, __m512* mx_out, __m512i* am_out) {
  constexpr int T = QV == 1 ? 12 : QV == 2 ? 12 : QV == 3 ? 7 : 6;
  __m512 mx[QV];
  __m512i am[QV];
  for (int v = 0; v < QV; ++v) {
    mx[v] = _mm512_set1_ps(-__builtin_inff());
    am[v] = _mm512_setzero_si512();
  }
  int64_t j = 0;
  for (; j + T <= len; j += T) {
    __m512 acc[T][QV];
    prefetch_rows(doc + (j + T) * stride, T * stride * 2);
    blk_bf16<QV, T>(qp, d2, doc + j * stride, stride, acc);
    for (int t = 0; t < T; ++t) {
      if (dm && !dm[j + t]) continue;
      for (int v = 0; v < QV; ++v) upd(acc[t][v], static_cast<int32_t>(j + t), mx[v], am[v]);
    }
  }
  for (; j < len; ++j) {
    if (dm && !dm[j]) continue;
    __m512 acc[1][QV];
    blk_bf16<QV, 1>(qp, d2, doc + j * stride, stride, acc);
    for (int v = 0; v < QV; ++v) upd(acc[0][v], static_cast<int32_t>(j), mx[v], am[v]);
  }
  for (int v = 0; v < QV; ++v) {
    mx_out[v] = mx[v];
    am_out[v] = am[v];
  }
}

// ------------------------------------------------------------- drivers --
struct Chunks {
  int64_t n = 0;
  int64_t lanes[64];  // real query tokens per chunk
  int64_t qv[64];     // zmm per chunk
  int64_t off[65];    // element offset of each chunk in one packed query (units of lanes*depth)
};

inline void plan_chunks(int64_t lq, int64_t depth, Chunks* c, int64_t* per_q) {
  // lq <= 4096 is enforced by the handler, so at most 64 chunks.
  c->n = ceil_div(lq, 16 * kMaxQV);
  int64_t off = 0;
  for (int64_t i = 0; i < c->n; ++i) {
    const int64_t rest = lq - i * 16 * kMaxQV;
    c->lanes[i] = rest < 16 * kMaxQV ? rest : 16 * kMaxQV;
    c->qv[i] = ceil_div(c->lanes[i], 16);
    c->off[i] = off;
    off += c->qv[i] * 16 * depth;
  }
  c->off[c->n] = off;
  *per_q = off;
}

inline void finish_row(const jaxrank::MaxsimJob& job, int64_t b, int64_t n, const Chunks& ch,
                       int64_t c, const __m512* mx, const __m512i* am, bool i8, double* s) {
  alignas(64) float m[64];
  alignas(64) int32_t a[64];
  for (int v = 0; v < ch.qv[c]; ++v) {
    _mm512_store_ps(m + 16 * v, mx[v]);
    _mm512_store_si512(a + 16 * v, am[v]);
  }
  const int64_t base = c * 16 * kMaxQV;
  for (int64_t w = 0; w < ch.lanes[c]; ++w) {
    const int64_t i = base + w;
    const float qw = job.qw[b][i];
    if (qw != 0.0f) *s += static_cast<double>(i8 ? qw * job.qs[b][i] : qw) * m[w];
    if (job.argmax) job.argmax[b][n * job.lq + i] = a[w];
  }
}

template <bool kBf16>
void maxsim_float(const jaxrank::MaxsimJob& job) {
  const int64_t lq = job.lq, d = job.d, stride = job.ld * job.d;
  Chunks ch;
  int64_t per_q;
  plan_chunks(lq, d, &ch, &per_q);
  Buf<float> qp(job.nq * per_q);
  for (int64_t b = 0; b < job.nq; ++b) {
    for (int64_t c = 0; c < ch.n; ++c) {
      float* dst = qp.p + b * per_q + ch.off[c];
      const int64_t width = ch.qv[c] * 16;
      for (int64_t k = 0; k < d; ++k) {
        for (int64_t w = 0; w < width; ++w) {
          const int64_t i = c * 16 * kMaxQV + w;
          float x = 0.0f;
          if (w < ch.lanes[c]) {
            if (kBf16) {
              const uint32_t u = uint32_t(static_cast<const uint16_t*>(job.q[b])[i * d + k]) << 16;
              memcpy(&x, &u, 4);
            } else {
              x = static_cast<const float*>(job.q[b])[i * d + k];
            }
          }
          dst[k * width + w] = x;
        }
      }
    }
  }
  Buf<float> conv(kBf16 ? stride : 0);
  __m512 mx[kMaxQV];
  __m512i am[kMaxQV];
  for (int64_t n = job.n0; n < job.n1; ++n) {
    const int64_t len = job.lengths[n];
    const uint8_t* dm = job.mask ? job.mask + n * job.ld : nullptr;
    const float* doc;
    if (kBf16) {
      const uint16_t* src = static_cast<const uint16_t*>(job.docs) + n * stride;
      const int64_t cnt = len * d;
      int64_t i = 0;
      for (; i + 16 <= cnt; i += 16) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(conv.p + i, _mm512_castsi512_ps(u));
      }
      for (; i < cnt; ++i) {
        const uint32_t u = uint32_t(src[i]) << 16;
        memcpy(conv.p + i, &u, 4);
      }
      doc = conv.p;
    } else {
      doc = static_cast<const float*>(job.docs) + n * stride;
    }
    // f32: the same rows of the next document; bf16 (converted scratch, in cache): next block.
    const int64_t pf = kBf16 ? 12 * d : stride;
    for (int64_t b = 0; b < job.nq; ++b) {
      double s = 0.0;
      for (int64_t c = 0; c < ch.n; ++c) {
        const float* q = qp.p + b * per_q + ch.off[c];
        switch (ch.qv[c]) {
          case 1: core_f32<1>(q, d, doc, len, dm, mx, am, pf); break;
          case 2: core_f32<2>(q, d, doc, len, dm, mx, am, pf); break;
          case 3: core_f32<3>(q, d, doc, len, dm, mx, am, pf); break;
          default: core_f32<4>(q, d, doc, len, dm, mx, am, pf); break;
        }
        finish_row(job, b, n, ch, c, mx, am, false, &s);
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}

// ------------------------------------------- f32 with int8 screening --
// Exact f32 MaxSim in two passes per (query chunk, document):
//  1. int8 screening: query and document tokens are quantized per token
//     (symmetric, scale = max|x| / 127, round to nearest) and every token-pair
//     score a_ij = dot_i8 * s_j * s_i is computed with VPDPBUSD (4 MACs per
//     lane, the GEMM register block of core_i8), storing the tile and its max
//     M_i per query token.
//  2. exact rescoring: a rigorous bound E_i >= |a_ij - t_ij| (t = the exact
//     real dot) + the float32 rounding of the rescoring dot is computed from
//     the token norms; every token with a_ij >= M_i - 2 E_i is rescored with a
//     float32 dot product and the max / first arg-max are taken over those.
//     Any token outside that set has a float32 dot strictly below the one at
//     argmax_j a_ij (proof in the README), so the result is the float32 MaxSim
//     with first-index ties, as in the plain kernel, only the rounding of each
//     dot differs (a different summation order).
// Inputs with non-finite values, or token magnitudes outside [2^-50, 2^50]
// (where the relative rounding model of the bound breaks down), fall back to
// the plain f32 kernel, per document (or for the whole call for queries).
// max|x| (returned), L1 norm and sum of squares of one token (f32 sums; NaN
// and inf propagate into the L1 sum).
inline float token_stats(const float* x, int64_t d, float* l1, float* ss) {
  __m512 mx = _mm512_setzero_ps(), sm = _mm512_setzero_ps(), sq = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; k += 16) {
    const int64_t r = d - k;
    const __mmask16 m = r >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << r) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
    const __m512 v = _mm512_abs_ps(x0);
    mx = _mm512_max_ps(mx, v);
    sm = _mm512_add_ps(sm, v);
    sq = _mm512_fmadd_ps(x0, x0, sq);
  }
  *l1 = _mm512_reduce_add_ps(sm);
  *ss = _mm512_reduce_add_ps(sq);
  return _mm512_reduce_max_ps(mx);
}

// Quantizes one token of d floats to codes c = round(x * 127 / max|x|)
// (zero-padded to rs bytes); returns the code sum and, in *rss, the f32 sum of
// squares of the residuals x - scale * c (each computed by one FMA, so exactly
// rounded). inv = 127 / max|x| and scale = max|x| / 127 (both 0 for a zero token).
inline int32_t quant_row(const float* x, int64_t d, float inv, float scale, int8_t* out,
                         int64_t rs, float* rss) {
  const __m512 vi = _mm512_set1_ps(inv), vs = _mm512_set1_ps(scale);
  __m512i sum = _mm512_setzero_si512();
  __m512 res = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; k += 16) {
    const int64_t r = d - k;
    const __mmask16 m = r >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << r) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
    const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vi));
    sum = _mm512_add_epi32(sum, c);
    const __m512 e = _mm512_fnmadd_ps(vs, _mm512_cvtepi32_ps(c), x0);
    res = _mm512_fmadd_ps(e, e, res);
    _mm_mask_storeu_epi8(out + k, m, _mm512_cvtsepi32_epi8(c));
  }
  for (int64_t t = d; t < rs; ++t) out[t] = 0;
  *rss = _mm512_reduce_add_ps(res);
  return _mm512_reduce_add_epi32(sum);
}

// Upper bound on the Euclidean norm from an f32 sum of d squares: relative
// rounding (d + 4) u, plus the worst underflow of the squares (d * 2^-126).
inline float norm_bound(float ss, int64_t d) {
  const float fd = static_cast<float>(d);
  return __builtin_sqrtf(ss) * (1.0f + (fd + 4.0f) * 0x1p-24f) + __builtin_sqrtf(fd) * 0x1p-62f;
}

inline bool screen_ok(float maxabs, float l1) {
  // Zero tokens are exact; others need magnitudes where f32 rounding is relative.
  if (!(l1 < 3.0e38f) || !(maxabs < 1.0e30f)) return false;  // also catches NaN
  return maxabs == 0.0f || (maxabs >= 0x1p-50f && maxabs <= 0x1p50f);
}

inline float dot_f32(const float* a, const float* b, int64_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= d; k += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), s1);
  }
  for (; k < d; k += 16) {
    const int64_t r = d - k;
    const __mmask16 m = r >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << r) - 1);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// Pass 1: screening scores of one query chunk against one document into
// S[j * 16QV + lane] (-inf for masked tokens) and their per-lane max.
template <int QV>
void screen_i8(const uint32_t* qp, int64_t d4, const uint8_t* doc, int64_t stride, int64_t len,
               const uint8_t* dm, const int32_t* dsum, const float* ds, const __m512* sqv,
               float* S, int32_t* am_out) {
  constexpr int T = QV == 1 ? 12 : QV == 2 ? 12 : QV == 3 ? 7 : 6;
  constexpr int W = 16 * QV;
  __m512 mx[QV];
  __m512i am[QV];
  for (int v = 0; v < QV; ++v) {
    mx[v] = _mm512_set1_ps(-__builtin_inff());
    am[v] = _mm512_setzero_si512();
  }
  const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
  auto finish = [&](__m512i a, int64_t j, int v) {
    if (dm && !dm[j]) {
      _mm512_storeu_ps(S + j * W + 16 * v, ninf);
      return;
    }
    const __m512i dot = _mm512_sub_epi32(a, _mm512_set1_epi32(128 * dsum[j]));
    const __m512 f =
        _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(ds[j])), sqv[v]);
    _mm512_storeu_ps(S + j * W + 16 * v, f);
    upd(f, static_cast<int32_t>(j), mx[v], am[v]);
  };
  int64_t j = 0;
  for (; j + T <= len; j += T) {
    __m512i acc[T][QV];
    blk_i8<QV, T>(qp, d4, doc + j * stride, stride, acc);
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < QV; ++v) finish(acc[t][v], j + t, v);
  }
  for (; j < len; ++j) {
    __m512i acc[1][QV];
    blk_i8<QV, 1>(qp, d4, doc + j * stride, stride, acc);
    for (int v = 0; v < QV; ++v) finish(acc[0][v], j, v);
  }
  for (int v = 0; v < QV; ++v) _mm512_storeu_si512(am_out + 16 * v, am[v]);
}

// bf16 inputs (kBf16) are widened to f32 exactly (queries once, each document
// into a scratch row block) and then take the same path.
inline void widen_bf16(const uint16_t* src, int64_t cnt, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= cnt; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  for (; i < cnt; ++i) {
    const uint32_t u = uint32_t(src[i]) << 16;
    memcpy(dst + i, &u, 4);
  }
}

template <bool kBf16>
void maxsim_screened(const jaxrank::MaxsimJob& job) {
  const int64_t lq = job.lq, d = job.d, d4 = ceil_div(d, 4), rs = 4 * d4;
  const int64_t stride = job.ld * d;
  if (d == 0 || d > 65793 || job.ld > (int64_t(1) << 24)) return maxsim_float<kBf16>(job);
  Buf<float> qwide(kBf16 ? job.nq * lq * d : 0), dwide(kBf16 ? stride : 0);
  if (kBf16)
    for (int64_t b = 0; b < job.nq; ++b)
      widen_bf16(static_cast<const uint16_t*>(job.q[b]), lq * d, qwide.p + b * lq * d);
  auto qrow_of = [&](int64_t b) {
    return kBf16 ? static_cast<const float*>(qwide.p + b * lq * d)
                 : static_cast<const float*>(job.q[b]);
  };
  const float u = 0x1p-24f, fd = static_cast<float>(d);
  Chunks ch;
  int64_t per_q;
  plan_chunks(lq, d4, &ch, &per_q);
  // Query pack: u8 (code + 128) words [d4][width] per chunk, and per lane the
  // scale, a bound A on |q|_2 and a bound B on the quantization residual's norm.
  Buf<uint32_t> qp(job.nq * per_q);
  const int64_t lanes_total = ch.off[ch.n] / d4;  // sum of chunk widths
  Buf<float> qsc(job.nq * lanes_total), qa(job.nq * lanes_total), qb(job.nq * lanes_total);
  Buf<int8_t> qc(rs);
  for (int64_t b = 0; b < job.nq; ++b) {
    const float* q = qrow_of(b);
    int64_t lane0 = 0;
    for (int64_t c = 0; c < ch.n; ++c) {
      uint32_t* dst = qp.p + b * per_q + ch.off[c];
      const int64_t width = ch.qv[c] * 16;
      for (int64_t w = 0; w < width; ++w) {
        const int64_t i = c * 16 * kMaxQV + w;
        float l1 = 0.0f, ss = 0.0f, rss = 0.0f, maxabs = 0.0f, scale = 0.0f;
        if (w < ch.lanes[c]) {
          maxabs = token_stats(q + i * d, d, &l1, &ss);
          if (!screen_ok(maxabs, l1)) return maxsim_float<kBf16>(job);
          scale = maxabs / 127.0f;
          quant_row(q + i * d, d, maxabs > 0.0f ? 127.0f / maxabs : 0.0f, scale, qc.p, rs, &rss);
        } else {
          memset(qc.p, 0, rs);
        }
        qsc.p[b * lanes_total + lane0 + w] = scale;
        qa.p[b * lanes_total + lane0 + w] = norm_bound(ss, d);
        qb.p[b * lanes_total + lane0 + w] = norm_bound(rss, d);
        for (int64_t k4 = 0; k4 < d4; ++k4) {
          uint32_t word = 0;
          for (int m = 0; m < 4; ++m)
            word |= static_cast<uint32_t>(static_cast<uint8_t>(qc.p[4 * k4 + m] + 128)) << (8 * m);
          dst[k4 * width + w] = word;
        }
      }
      lane0 += width;
    }
  }
  Buf<int8_t> dq(job.ld * rs);
  Buf<int32_t> dsum(job.ld);
  Buf<float> dsc(job.ld), dn(job.ld), en(job.ld);
  Buf<float> S(job.ld * 16 * kMaxQV);
  Buf<int32_t> cand(job.ld * 16 * kMaxQV + 16);
  const __m512i lane_ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 mx[kMaxQV], sqv[kMaxQV];
  __m512i am[kMaxQV];
  for (int64_t n = job.n0; n < job.n1; ++n) {
    const int64_t len = job.lengths[n];
    const uint8_t* dm = job.mask ? job.mask + n * job.ld : nullptr;
    const float* doc;
    if (kBf16) {
      widen_bf16(static_cast<const uint16_t*>(job.docs) + n * stride, len * d, dwide.p);
      doc = dwide.p;
    } else {
      doc = static_cast<const float*>(job.docs) + n * stride;
    }
    bool ok = true, any_valid = false;
    for (int64_t j = 0; j < len && ok; ++j) {
      float l1, ss, rss;
      const float maxabs = token_stats(doc + j * d, d, &l1, &ss);
      ok = screen_ok(maxabs, l1);
      dsc.p[j] = maxabs / 127.0f;
      dsum.p[j] = quant_row(doc + j * d, d, maxabs > 0.0f ? 127.0f / maxabs : 0.0f, dsc.p[j],
                            dq.p + j * rs, rs, &rss);
      dn.p[j] = norm_bound(ss, d);
      en.p[j] = norm_bound(rss, d);
      any_valid = any_valid || !dm || dm[j];
    }
    if (!ok) {
      jaxrank::MaxsimJob one = job;
      one.n0 = n;
      one.n1 = n + 1;
      maxsim_float<kBf16>(one);
      continue;
    }
    const uint8_t* dcodes = reinterpret_cast<const uint8_t*>(dq.p);
    for (int64_t b = 0; b < job.nq; ++b) {
      const float* q = qrow_of(b);
      double s = 0.0;
      int64_t lane0 = 0;
      for (int64_t c = 0; c < ch.n; ++c) {
        const int64_t width = ch.qv[c] * 16, nv = ch.qv[c];
        const float* sq = qsc.p + b * lanes_total + lane0;
        alignas(64) float best[64];
        alignas(64) int32_t arg[64];
        for (int64_t w = 0; w < width; ++w) {
          best[w] = -__builtin_inff();
          arg[w] = 0;
        }
        if (any_valid) {
          const uint32_t* qc4 = qp.p + b * per_q + ch.off[c];
          for (int v = 0; v < nv; ++v) sqv[v] = _mm512_loadu_ps(sq + 16 * v);
          alignas(64) int32_t sam[64];
          switch (nv) {
            case 1: screen_i8<1>(qc4, d4, dcodes, rs, len, dm, dsum.p, dsc.p, sqv, S.p, sam); break;
            case 2: screen_i8<2>(qc4, d4, dcodes, rs, len, dm, dsum.p, dsc.p, sqv, S.p, sam); break;
            case 3: screen_i8<3>(qc4, d4, dcodes, rs, len, dm, dsum.p, dsc.p, sqv, S.p, sam); break;
            default: screen_i8<4>(qc4, d4, dcodes, rs, len, dm, dsum.p, dsc.p, sqv, S.p, sam); break;
          }
          // Rescore the screening arg-max m_i of each live lane (real tokens,
          // weighted or with arg-max requested) in f32. Token j can still have
          // f32(q_i . d_j) >= f_i = f32(q_i . d_m) only if
          //   a_ij + X_i |e_j| + Y_i |d_j| >= f_i       (bound: README)
          // with X_i = (A_i + B_i)(1 + 4u), Y_i = B_i + 4u (A_i + B_i) + 1.01 (D + 2) u A_i.
          const float* qrow = q + c * 16 * kMaxQV * d;
          alignas(64) float thr[64], X[64], Y[64];
          for (int64_t w = 0; w < width; ++w) {
            thr[w] = __builtin_inff();
            X[w] = Y[w] = 0.0f;
            if (w >= ch.lanes[c]) continue;
            const int64_t i = c * 16 * kMaxQV + w;
            if (!job.argmax && job.qw[b][i] == 0.0f) continue;
            const int32_t m = sam[w];
            const float f = dot_f32(qrow + w * d, doc + int64_t(m) * d, d);
            best[w] = f;
            arg[w] = m;
            S.p[m * width + w] = -__builtin_inff();  // scored already
            const float A = qa.p[b * lanes_total + lane0 + w], B = qb.p[b * lanes_total + lane0 + w];
            const float safety = 1.001f + 2.0f * fd * u;
            X[w] = safety * (A + B) * (1.0f + 4.0f * u);
            Y[w] = safety * (B + 4.0f * u * (A + B) + 1.01f * (fd + 2.0f) * u * A);
            thr[w] = f - 4.0f * u * __builtin_fabsf(f);
          }
          // Candidate list (branch-free): entries j * 64 + lane.
          int64_t cnt = 0;
          for (int64_t j = 0; j < len; ++j) {
            const float* srow = S.p + j * width;
            const __m512 ej = _mm512_set1_ps(en.p[j]), dj = _mm512_set1_ps(dn.p[j]);
            for (int v = 0; v < nv; ++v) {
              __m512 lhs = _mm512_fmadd_ps(_mm512_load_ps(X + 16 * v), ej,
                                           _mm512_loadu_ps(srow + 16 * v));
              lhs = _mm512_fmadd_ps(_mm512_load_ps(Y + 16 * v), dj, lhs);
              const __mmask16 k = _mm512_cmp_ps_mask(lhs, _mm512_load_ps(thr + 16 * v), _CMP_GE_OQ);
              const __m512i ids =
                  _mm512_add_epi32(lane_ids, _mm512_set1_epi32(int32_t(j * 64 + 16 * v)));
              // Register compress + full store: the memory form is microcoded on Zen 4.
              _mm512_storeu_si512(cand.p + cnt, _mm512_maskz_compress_epi32(k, ids));
              cnt += __builtin_popcount(static_cast<unsigned>(k));
            }
          }
          for (int64_t e = 0; e < cnt; ++e) {
            const int32_t j = cand.p[e] >> 6, w = cand.p[e] & 63;
            const float f = dot_f32(qrow + w * d, doc + int64_t(j) * d, d);
            const bool take = f > best[w] || (f == best[w] && j < arg[w]);
            best[w] = take ? f : best[w];
            arg[w] = take ? j : arg[w];
          }
        }
        for (int v = 0; v < nv; ++v) {
          mx[v] = _mm512_load_ps(best + 16 * v);
          am[v] = _mm512_load_si512(arg + 16 * v);
        }
        finish_row(job, b, n, ch, c, mx, am, false, &s);
        lane0 += width;
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}



void maxsim_bf16_dp(const jaxrank::MaxsimJob& job) {
  const int64_t lq = job.lq, d = job.d, d2 = ceil_div(d, 2), stride = job.ld * job.d;
  Chunks ch;
  int64_t per_q;
  plan_chunks(lq, d2, &ch, &per_q);
  Buf<uint32_t> qp(job.nq * per_q);
  for (int64_t b = 0; b < job.nq; ++b) {
    const uint16_t* q = static_cast<const uint16_t*>(job.q[b]);
    for (int64_t c = 0; c < ch.n; ++c) {
      uint32_t* dst = qp.p + b * per_q + ch.off[c];
      const int64_t width = ch.qv[c] * 16;
      for (int64_t k2 = 0; k2 < d2; ++k2) {
        for (int64_t w = 0; w < width; ++w) {
          const int64_t i = c * 16 * kMaxQV + w;
          uint32_t word = 0;
          if (w < ch.lanes[c]) {
            word = q[i * d + 2 * k2];
            if (2 * k2 + 1 < d) word |= uint32_t(q[i * d + 2 * k2 + 1]) << 16;
          }
          dst[k2 * width + w] = word;
        }
      }
    }
  }
  // Odd d: rows are copied to 2*d2 elements (zero-padded) so pairs never straddle rows.
  const bool pad = (d % 2) != 0;
  Buf<uint16_t> padded(pad ? job.ld * d2 * 2 : 0);
  __m512 mx[kMaxQV];
  __m512i am[kMaxQV];
  for (int64_t n = job.n0; n < job.n1; ++n) {
    const int64_t len = job.lengths[n];
    const uint8_t* dm = job.mask ? job.mask + n * job.ld : nullptr;
    const uint16_t* doc = static_cast<const uint16_t*>(job.docs) + n * stride;
    int64_t rs = d;
    if (pad) {
      rs = 2 * d2;
      for (int64_t j = 0; j < len; ++j) {
        memcpy(padded.p + j * rs, doc + j * d, d * 2);
        padded.p[j * rs + d] = 0;
      }
      doc = padded.p;
    }
    for (int64_t b = 0; b < job.nq; ++b) {
      double s = 0.0;
      for (int64_t c = 0; c < ch.n; ++c) {
        const uint32_t* q = qp.p + b * per_q + ch.off[c];
        switch (ch.qv[c]) {
          case 1: core_bf16<1>(q, d2, doc, rs, len, dm, mx, am); break;
          case 2: core_bf16<2>(q, d2, doc, rs, len, dm, mx, am); break;
          case 3: core_bf16<3>(q, d2, doc, rs, len, dm, mx, am); break;
          default: core_bf16<4>(q, d2, doc, rs, len, dm, mx, am); break;
        }
        finish_row(job, b, n, ch, c, mx, am, false, &s);
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}

void maxsim_i8(const jaxrank::MaxsimJob& job) {
  const int64_t lq = job.lq, d = job.d, d4 = ceil_div(d, 4), stride = job.ld * job.d;
  Chunks ch;
  int64_t per_q;
  plan_chunks(lq, d4, &ch, &per_q);
  Buf<uint32_t> qp(job.nq * per_q);
  for (int64_t b = 0; b < job.nq; ++b) {
    const int8_t* q = static_cast<const int8_t*>(job.q[b]);
    for (int64_t c = 0; c < ch.n; ++c) {
      uint32_t* dst = qp.p + b * per_q + ch.off[c];
      const int64_t width = ch.qv[c] * 16;
      for (int64_t k4 = 0; k4 < d4; ++k4) {
        for (int64_t w = 0; w < width; ++w) {
          const int64_t i = c * 16 * kMaxQV + w;
          uint32_t word = 0;
          for (int m = 0; m < 4; ++m) {
            const int64_t k = 4 * k4 + m;
            const uint32_t byte =
                (w < ch.lanes[c] && k < d) ? static_cast<uint32_t>(q[i * d + k] + 128) : 0u;
            word |= byte << (8 * m);
          }
          dst[k4 * width + w] = word;
        }
      }
    }
  }
  // Documents whose d is not a multiple of 4 are copied to rows of 4*d4 bytes
  // (zero-padded) so the 4-byte broadcasts never read past a row.
  const bool pad = (d % 4) != 0;
  Buf<uint8_t> padded(pad ? job.ld * d4 * 4 : 0);
  Buf<int32_t> dsum(job.ld);
  __m512 mx[kMaxQV];
  __m512i am[kMaxQV];
  for (int64_t n = job.n0; n < job.n1; ++n) {
    const int64_t len = job.lengths[n];
    const uint8_t* dm = job.mask ? job.mask + n * job.ld : nullptr;
    const int8_t* src = static_cast<const int8_t*>(job.docs) + n * stride;
    for (int64_t j = 0; j < len; ++j) {
      int32_t s = 0;
      for (int64_t k = 0; k < d; ++k) s += src[j * d + k];
      dsum.p[j] = s;
    }
    const uint8_t* doc = reinterpret_cast<const uint8_t*>(src);
    int64_t rs = d;
    if (pad) {
      rs = 4 * d4;
      for (int64_t j = 0; j < len; ++j) {
        memcpy(padded.p + j * rs, src + j * d, d);
        memset(padded.p + j * rs + d, 0, rs - d);
      }
      doc = padded.p;
    }
    const float* ds = job.ds + n * job.ld;
    for (int64_t b = 0; b < job.nq; ++b) {
      double s = 0.0;
      for (int64_t c = 0; c < ch.n; ++c) {
        const uint32_t* q = qp.p + b * per_q + ch.off[c];
        switch (ch.qv[c]) {
          case 1: core_i8<1>(q, d4, doc, rs, len, dm, dsum.p, ds, mx, am); break;
          case 2: core_i8<2>(q, d4, doc, rs, len, dm, dsum.p, ds, mx, am); break;
          case 3: core_i8<3>(q, d4, doc, rs, len, dm, dsum.p, ds, mx, am); break;
          default: core_i8<4>(q, d4, doc, rs, len, dm, dsum.p, ds, mx, am); break;
        }
        finish_row(job, b, n, ch, c, mx, am, true, &s);
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}

// Single-vector int8: the document is the u8 operand (codes xor 0x80 =
// code + 128) and the query the s8 operand, so the correction 128 * sum(q)
// is one constant per query. Same int32 bound as above (d <= 65,793).
void dot_i8(const int8_t* q, int64_t nq, int64_t d, const int8_t* codes, int64_t n0,
            int64_t n1, int32_t* out, int64_t out_stride) {
  const int64_t nc = ceil_div(d, 64);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  Buf<int32_t> qsum(nq);
  for (int64_t b = 0; b < nq; ++b) {
    int32_t s = 0;
    for (int64_t k = 0; k < d; ++k) s += q[b * d + k];
    qsum.p[b] = s;
  }
  auto kmask = [&](int64_t c) -> __mmask64 {
    const int64_t rest = d - 64 * c;
    return rest >= 64 ? ~__mmask64(0) : ((__mmask64(1) << rest) - 1);
  };
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    for (int64_t b = 0; b < nq; ++b) {
      __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      for (int64_t c = 0; c < nc; ++c) {
        const __mmask64 m = kmask(c);
        const __m512i qv = _mm512_maskz_loadu_epi8(m, q + b * d + 64 * c);
        const int8_t* p = codes + n * d + 64 * c;
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p), flip), qv);
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p + d), flip), qv);
        acc2 = _mm512_dpbusd_epi32(acc2,
                                   _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p + 2 * d), flip), qv);
        acc3 = _mm512_dpbusd_epi32(acc3,
                                   _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p + 3 * d), flip), qv);
      }
      const int32_t corr = 128 * qsum.p[b];
      int32_t* o = out + b * out_stride + n;
      o[0] = _mm512_reduce_add_epi32(acc0) - corr;
      o[1] = _mm512_reduce_add_epi32(acc1) - corr;
      o[2] = _mm512_reduce_add_epi32(acc2) - corr;
      o[3] = _mm512_reduce_add_epi32(acc3) - corr;
    }
  }
  for (; n < n1; ++n) {
    for (int64_t b = 0; b < nq; ++b) {
      __m512i acc = _mm512_setzero_si512();
      for (int64_t c = 0; c < nc; ++c) {
        const __mmask64 m = kmask(c);
        const __m512i qv = _mm512_maskz_loadu_epi8(m, q + b * d + 64 * c);
        const __m512i dv =
            _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, codes + n * d + 64 * c), flip);
        acc = _mm512_dpbusd_epi32(acc, dv, qv);
      }
      out[b * out_stride + n] = _mm512_reduce_add_epi32(acc) - 128 * qsum.p[b];
    }
  }
}

void hamming(const uint8_t* q, int64_t nq, int64_t nbytes, const uint8_t* codes, int64_t n0,
             int64_t n1, int32_t* out, int64_t out_stride) {
  const int64_t nc = ceil_div(nbytes, 64);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* c = codes + n * nbytes;
    for (int64_t b = 0; b < nq; ++b) {
      __m512i acc = _mm512_setzero_si512();
      for (int64_t i = 0; i < nc; ++i) {
        const int64_t rest = nbytes - 64 * i;
        const __mmask64 m = rest >= 64 ? ~__mmask64(0) : ((__mmask64(1) << rest) - 1);
        const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, q + b * nbytes + 64 * i),
                                           _mm512_maskz_loadu_epi8(m, c + 64 * i));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
      }
      out[b * out_stride + n] = static_cast<int32_t>(_mm512_reduce_add_epi64(acc));
    }
  }
}

// Screening pays off once its per-document quantization is shared by enough
// query tokens: JAXRANK_F32_SCREEN=0/1 forces it off/on (benchmarks, tests).
int screen_mode() {
  static const int mode = [] {
    const char* e = std::getenv("JAXRANK_F32_SCREEN");
    if (e && e[0] == '0') return 0;
    if (e && e[0] == '1') return 1;
    return 2;
  }();
  return mode;
}

void maxsim_f32(const jaxrank::MaxsimJob& job) {
  const int mode = screen_mode();
  const bool screen = mode == 1 || (mode == 2 && job.nq * job.lq >= kScreenMinTokens);
  if (screen) maxsim_screened<false>(job);
  else maxsim_float<false>(job);
}

// bf16 with AVX512_BF16: VDPBF16PS (two MACs per lane) for few query tokens,
// screening of the widened inputs from kScreenMinTokensBf16 query tokens.
void maxsim_bf16_dp_or_screen(const jaxrank::MaxsimJob& job) {
  const int mode = screen_mode();
  const bool screen = mode == 1 || (mode == 2 && job.nq * job.lq >= kScreenMinTokensBf16);
  if (screen) maxsim_screened<true>(job);
  else maxsim_bf16_dp(job);
}

// bf16 without AVX512_BF16: the same screening over the widened inputs.
void maxsim_bf16_convert_or_screen(const jaxrank::MaxsimJob& job) {
  const int mode = screen_mode();
  const bool screen = mode == 1 || (mode == 2 && job.nq * job.lq >= kScreenMinTokens);
  if (screen) maxsim_screened<true>(job);
  else maxsim_float<true>(job);
}

}  // namespace
#pragma GCC pop_options

namespace jaxrank {
const Kernels& avx512_kernels() {
  // bf16 MaxSim uses VDPBF16PS where the CPU has AVX512_BF16; Hamming uses
  // VPOPCNTDQ where present (the AVX2 popcnt loop otherwise).
  static const Kernels k = [] {
    Kernels t{"avx512_vnni", maxsim_f32, maxsim_bf16_convert_or_screen, maxsim_i8, dot_i8,
              hamming};
    if (cpu_has_avx512_bf16()) t.maxsim_bf16 = maxsim_bf16_dp_or_screen;
    if (!cpu_has_vpopcntdq()) t.hamming = avx2_kernels().hamming;
    return t;
  }();
  return k;
}
}  // namespace jaxrank
