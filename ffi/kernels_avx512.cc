// AVX-512 path (F/BW/VL/DQ + VNNI; VPOPCNTDQ for Hamming when present).
//
// MaxSim: query tokens are the lanes (16 per zmm, up to 4 zmm = 64 tokens per
// chunk), packed once per call as [d][lanes]; every document token is
// broadcast straight from its row (embedded-broadcast FMA), so documents are
// read in their natural [Ld, d] layout and the max over document tokens is a
// lane-wise compare/blend.
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
#include <cstring>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vpopcntdq,fma,popcnt,bmi2")
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

// Software prefetch of the rows of the next register block: document rows are
// walked T at a time, 4 bytes per step, which the hardware prefetcher does not
// run ahead of well enough (measured 3x slower than an L2-resident copy).
inline void prefetch_rows(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

inline void upd(__m512 a, int32_t j, __m512& mx, __m512i& am) {
  const __mmask16 gt = _mm512_cmp_ps_mask(a, mx, _CMP_GT_OQ);
  mx = _mm512_mask_mov_ps(mx, gt, a);
  am = _mm512_mask_mov_epi32(am, gt, _mm512_set1_epi32(j));
}

// ---------------------------------------------------------------- f32 --
template <int QV, int T>
inline void blk_f32(const float* qp, int64_t d, const float* doc, __m512 (&acc)[T][QV]) {
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    __m512 qv[QV];
    for (int v = 0; v < QV; ++v) qv[v] = _mm512_loadu_ps(qp + (k * QV + v) * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 b = _mm512_set1_ps(doc[t * d + k]);
      for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_fmadd_ps(qv[v], b, acc[t][v]);
    }
  }
}

template <int QV>
void core_f32(const float* qp, int64_t d, const float* doc, int64_t len, const uint8_t* dm,
              __m512* mx_out, __m512i* am_out) {
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
    prefetch_rows(doc + (j + T) * d, T * d * 4);
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
template <int QV, int T>
inline void blk_i8(const uint32_t* qp, int64_t d4, const uint8_t* doc, int64_t stride,
                   __m512i (&acc)[T][QV]) {
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_setzero_si512();
  for (int64_t k = 0; k < d4; ++k) {
    __m512i qv[QV];
    for (int v = 0; v < QV; ++v) qv[v] = _mm512_loadu_si512(qp + (k * QV + v) * 16);
    for (int t = 0; t < T; ++t) {
      int32_t w;
      memcpy(&w, doc + t * stride + 4 * k, 4);
      const __m512i b = _mm512_set1_epi32(w);
      for (int v = 0; v < QV; ++v) acc[t][v] = _mm512_dpbusd_epi32(acc[t][v], qv[v], b);
    }
  }
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
  auto finish = [&](const __m512i& a, int64_t j, int v) {
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
    for (int64_t b = 0; b < job.nq; ++b) {
      double s = 0.0;
      for (int64_t c = 0; c < ch.n; ++c) {
        const float* q = qp.p + b * per_q + ch.off[c];
        switch (ch.qv[c]) {
          case 1: core_f32<1>(q, d, doc, len, dm, mx, am); break;
          case 2: core_f32<2>(q, d, doc, len, dm, mx, am); break;
          case 3: core_f32<3>(q, d, doc, len, dm, mx, am); break;
          default: core_f32<4>(q, d, doc, len, dm, mx, am); break;
        }
        finish_row(job, b, n, ch, c, mx, am, false, &s);
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}

void maxsim_f32(const jaxrank::MaxsimJob& job) { maxsim_float<false>(job); }
void maxsim_bf16(const jaxrank::MaxsimJob& job) { maxsim_float<true>(job); }

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

}  // namespace
#pragma GCC pop_options

namespace jaxrank {
const Kernels& avx512_kernels() {
  static const Kernels with_popcnt{"avx512_vnni", maxsim_f32, maxsim_bf16, maxsim_i8, dot_i8,
                                   hamming};
  static const Kernels without_popcnt{"avx512_vnni", maxsim_f32, maxsim_bf16, maxsim_i8, dot_i8,
                                      avx2_kernels().hamming};
  return cpu_has_vpopcntdq() ? with_popcnt : without_popcnt;
}
}  // namespace jaxrank
