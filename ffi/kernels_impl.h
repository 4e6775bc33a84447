// Portable kernel bodies, included by kernels_generic.cc and kernels_avx2.cc
// inside an anonymous namespace after a `#pragma GCC target`, so each
// inclusion is compiled for its ISA. Plain loops over fixed-width lane
// arrays; the compiler vectorizes them for the including TU's target.
// No standard-library templates here (see kernels.h on the ODR hazard).
//
// Lanes are query tokens: a query row is packed once per call into chunks of
// kCW tokens, transposed to [d][kCW], so one document token is broadcast
// against kCW query tokens and the max over document tokens is a lane-wise
// max (no horizontal reduction, no document repacking).

constexpr int kCW = 16;  // query tokens per chunk (lanes)
constexpr int kT = 4;    // document tokens per register block

template <class T>
struct Buf {
  T* p = nullptr;
  explicit Buf(int64_t n) : p(n > 0 ? new T[n] : nullptr) {}
  ~Buf() { delete[] p; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

inline float bf16_bits_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// mx[w] = max over valid tokens j < len of <q_w, doc_j>; am[w] = first argmax.
template <class AT, class QT, class DT, class Val>
inline void gen_maxsim_doc(const QT* qp, int64_t d, const DT* doc, int64_t len,
                           const uint8_t* dm, Val val, float* mx, int32_t* am) {
  for (int w = 0; w < kCW; ++w) {
    mx[w] = -__builtin_inff();
    am[w] = 0;
  }
  int64_t j = 0;
  for (; j + kT <= len; j += kT) {
    AT acc[kT][kCW] = {};
    for (int64_t k = 0; k < d; ++k) {
      const QT* qk = qp + k * kCW;
      for (int t = 0; t < kT; ++t) {
        const AT dv = static_cast<AT>(doc[(j + t) * d + k]);
        for (int w = 0; w < kCW; ++w) acc[t][w] += static_cast<AT>(qk[w]) * dv;
      }
    }
    for (int t = 0; t < kT; ++t) {
      if (dm && !dm[j + t]) continue;
      for (int w = 0; w < kCW; ++w) {
        const float v = val(acc[t][w], j + t);
        if (v > mx[w]) {
          mx[w] = v;
          am[w] = static_cast<int32_t>(j + t);
        }
      }
    }
  }
  for (; j < len; ++j) {
    if (dm && !dm[j]) continue;
    AT acc[kCW] = {};
    for (int64_t k = 0; k < d; ++k) {
      const AT dv = static_cast<AT>(doc[j * d + k]);
      for (int w = 0; w < kCW; ++w) acc[w] += static_cast<AT>(qp[k * kCW + w]) * dv;
    }
    for (int w = 0; w < kCW; ++w) {
      const float v = val(acc[w], j);
      if (v > mx[w]) {
        mx[w] = v;
        am[w] = static_cast<int32_t>(j);
      }
    }
  }
}

// Shared driver: packs the queries, walks documents (outer) and query rows
// (inner) so each document stays in cache while all queries visit it.
template <class QT, class AT, class LoadQ, class PrepDoc, class Val>
void gen_maxsim_driver(const jaxrank::MaxsimJob& job, LoadQ load_q, PrepDoc prep_doc,
                       Val val, bool int8_scales) {
  const int64_t lq = job.lq, d = job.d, nch = ceil_div(job.lq, kCW);
  const int64_t per_q = nch * d * kCW;
  Buf<QT> qp(job.nq * per_q);
  for (int64_t b = 0; b < job.nq; ++b) {
    for (int64_t c = 0; c < nch; ++c) {
      QT* dst = qp.p + b * per_q + c * d * kCW;
      for (int64_t k = 0; k < d; ++k) {
        for (int w = 0; w < kCW; ++w) {
          const int64_t i = c * kCW + w;
          dst[k * kCW + w] = i < lq ? load_q(job.q[b], i * d + k) : QT(0);
        }
      }
    }
  }
  float mx[kCW];
  int32_t am[kCW];
  for (int64_t n = job.n0; n < job.n1; ++n) {
    const int64_t len = job.lengths[n];
    const uint8_t* dm = job.mask ? job.mask + n * job.ld : nullptr;
    const auto* doc = prep_doc(n, len);
    const float* ds = int8_scales ? job.ds + n * job.ld : nullptr;
    for (int64_t b = 0; b < job.nq; ++b) {
      double s = 0.0;
      for (int64_t c = 0; c < nch; ++c) {
        gen_maxsim_doc<AT>(
            qp.p + b * per_q + c * d * kCW, d, doc, len, dm,
            [&](AT a, int64_t j) { return val(a, ds, j); }, mx, am);
        const int64_t lanes = lq - c * kCW < kCW ? lq - c * kCW : kCW;
        for (int64_t w = 0; w < lanes; ++w) {
          const int64_t i = c * kCW + w;
          float wgt = job.qw[b][i];
          if (int8_scales) wgt *= job.qs[b][i];
          if (job.qw[b][i] != 0.0f) s += static_cast<double>(wgt) * mx[w];
          if (job.argmax) job.argmax[b][n * lq + i] = am[w];
        }
      }
      job.out[b][n] = static_cast<float>(s);
    }
  }
}

void gen_maxsim_f32(const jaxrank::MaxsimJob& job) {
  const float* docs = static_cast<const float*>(job.docs);
  const int64_t stride = job.ld * job.d;
  gen_maxsim_driver<float, float>(
      job, [](const void* q, int64_t idx) { return static_cast<const float*>(q)[idx]; },
      [&](int64_t n, int64_t) { return docs + n * stride; },
      [](float a, const float*, int64_t) { return a; }, false);
}

void gen_maxsim_bf16(const jaxrank::MaxsimJob& job) {
  const uint16_t* docs = static_cast<const uint16_t*>(job.docs);
  const int64_t stride = job.ld * job.d;
  Buf<float> buf(stride);
  gen_maxsim_driver<float, float>(
      job,
      [](const void* q, int64_t idx) {
        return bf16_bits_to_f32(static_cast<const uint16_t*>(q)[idx]);
      },
      [&](int64_t n, int64_t len) {
        const uint16_t* src = docs + n * stride;
        for (int64_t i = 0; i < len * job.d; ++i) buf.p[i] = bf16_bits_to_f32(src[i]);
        return static_cast<const float*>(buf.p);
      },
      [](float a, const float*, int64_t) { return a; }, false);
}

void gen_maxsim_i8(const jaxrank::MaxsimJob& job) {
  const int8_t* docs = static_cast<const int8_t*>(job.docs);
  const int64_t stride = job.ld * job.d;
  gen_maxsim_driver<int32_t, int32_t>(
      job, [](const void* q, int64_t idx) { return int32_t(static_cast<const int8_t*>(q)[idx]); },
      [&](int64_t n, int64_t) { return docs + n * stride; },
      [](int32_t a, const float* ds, int64_t j) { return static_cast<float>(a) * ds[j]; }, true);
}

void gen_dot_i8(const int8_t* q, int64_t nq, int64_t d, const int8_t* codes, int64_t n0,
                int64_t n1, int32_t* out, int64_t out_stride) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* c = codes + n * d;
    for (int64_t b = 0; b < nq; ++b) {
      const int8_t* qb = q + b * d;
      int32_t s = 0;
      for (int64_t k = 0; k < d; ++k) s += int32_t(qb[k]) * int32_t(c[k]);
      out[b * out_stride + n] = s;
    }
  }
}

void gen_hamming(const uint8_t* q, int64_t nq, int64_t nbytes, const uint8_t* codes,
                 int64_t n0, int64_t n1, int32_t* out, int64_t out_stride) {
  const int64_t nw = nbytes / 8;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* c = codes + n * nbytes;
    for (int64_t b = 0; b < nq; ++b) {
      const uint8_t* qb = q + b * nbytes;
      int64_t s = 0;
      for (int64_t w = 0; w < nw; ++w) {
        uint64_t x, y;
        memcpy(&x, qb + 8 * w, 8);
        memcpy(&y, c + 8 * w, 8);
        s += __builtin_popcountll(x ^ y);
      }
      for (int64_t k = 8 * nw; k < nbytes; ++k) s += __builtin_popcount(unsigned(qb[k] ^ c[k]));
      out[b * out_stride + n] = static_cast<int32_t>(s);
    }
  }
}
