// Sanitizer harness for the kernels (no XLA): every ISA table this CPU runs is
// checked against a naive double-precision reference on small random shapes
// (Lq = 1, odd D, D not a multiple of 4/16/64, zero-length and masked
// documents, empty ranges, -128 codes). Built with -fsanitize=address,undefined
// by tests/test_native.py. Exit status 0 = all checks passed.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels.h"

using jaxrank::Kernels;
using jaxrank::MaxsimJob;

static int failures = 0;
#define CHECK(cond, ...)                      \
  do {                                        \
    if (!(cond)) {                            \
      ++failures;                             \
      std::fprintf(stderr, "FAIL: " __VA_ARGS__); \
      std::fprintf(stderr, "\n");             \
    }                                         \
  } while (0)

static uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);  // truncation: exact for the values we use
}
static float from_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Case {
  int64_t nq, lq, d, n, ld;
  bool use_mask, want_argmax;
};

static void run_float(const Kernels& k, const Case& c, std::mt19937& rng, bool bf16) {
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::uniform_int_distribution<int> L(0, static_cast<int>(c.ld));
  // Exactly representable values in bf16 (8 significant bits) keep both paths comparable.
  auto val = [&]() { return bf16 ? from_bf16(to_bf16(U(rng))) : U(rng); };
  std::vector<float> q(c.nq * c.lq * c.d), docs(c.n * c.ld * c.d), qw(c.nq * c.lq);
  for (auto& x : q) x = val();
  for (auto& x : docs) x = val();
  for (auto& x : qw) x = (rng() % 5) ? 1.f : 0.f;
  std::vector<int32_t> len(c.n);
  for (auto& x : len) x = L(rng);
  std::vector<uint8_t> mask(c.n * c.ld);
  for (auto& x : mask) x = (rng() % 4) != 0;
  std::vector<uint16_t> qb(q.size()), db(docs.size());
  for (size_t i = 0; i < q.size(); ++i) qb[i] = to_bf16(q[i]);
  for (size_t i = 0; i < docs.size(); ++i) db[i] = to_bf16(docs[i]);

  std::vector<float> out(c.nq * c.n, 12345.f);
  std::vector<int32_t> am(c.nq * c.n * c.lq, -7);
  std::vector<const void*> qp(c.nq);
  std::vector<const float*> qwp(c.nq);
  std::vector<float*> op(c.nq);
  std::vector<int32_t*> ap(c.nq);
  for (int64_t b = 0; b < c.nq; ++b) {
    qp[b] = bf16 ? static_cast<const void*>(qb.data() + b * c.lq * c.d)
                 : static_cast<const void*>(q.data() + b * c.lq * c.d);
    qwp[b] = qw.data() + b * c.lq;
    op[b] = out.data() + b * c.n;
    ap[b] = am.data() + b * c.n * c.lq;
  }
  MaxsimJob job;
  job.nq = c.nq; job.lq = c.lq; job.d = c.d; job.ld = c.ld;
  job.q = qp.data(); job.qw = qwp.data();
  job.docs = bf16 ? static_cast<const void*>(db.data()) : static_cast<const void*>(docs.data());
  job.lengths = len.data();
  job.mask = c.use_mask ? mask.data() : nullptr;
  job.out = op.data();
  job.argmax = c.want_argmax ? ap.data() : nullptr;
  // Two ranges, like two worker threads.
  job.n0 = 0; job.n1 = c.n / 2;
  (bf16 ? k.maxsim_bf16 : k.maxsim_f32)(job);
  job.n0 = c.n / 2; job.n1 = c.n;
  (bf16 ? k.maxsim_bf16 : k.maxsim_f32)(job);

  for (int64_t b = 0; b < c.nq; ++b) {
    for (int64_t n = 0; n < c.n; ++n) {
      double s = 0.0;
      bool any_valid = false;
      for (int64_t i = 0; i < c.lq; ++i) {
        double m = -INFINITY;
        int32_t arg = 0;
        for (int64_t j = 0; j < len[n]; ++j) {
          if (c.use_mask && !mask[n * c.ld + j]) continue;
          any_valid = true;
          double dot = 0.0;
          for (int64_t t = 0; t < c.d; ++t)
            dot += double(q[(b * c.lq + i) * c.d + t]) * docs[(n * c.ld + j) * c.d + t];
          if (dot > m) { m = dot; arg = static_cast<int32_t>(j); }
        }
        if (qw[b * c.lq + i] != 0.f) s += m;
        if (c.want_argmax && std::isfinite(m)) {
          // The kernel's float32 argmax may differ from the double one only on near-ties.
          const int32_t got = am[(b * c.n + n) * c.lq + i];
          double dg = 0.0;
          for (int64_t t = 0; t < c.d; ++t)
            dg += double(q[(b * c.lq + i) * c.d + t]) * docs[(n * c.ld + got) * c.d + t];
          CHECK(got >= 0 && got < len[n] && std::fabs(dg - m) <= 1e-5 * (1 + std::fabs(m)),
                "%s %s argmax b=%ld n=%ld i=%ld got %d want %d", k.name, bf16 ? "bf16" : "f32",
                long(b), long(n), long(i), got, arg);
        }
        if (c.want_argmax && !std::isfinite(m))
          CHECK(am[(b * c.n + n) * c.lq + i] == 0, "%s argmax of empty doc != 0", k.name);
      }
      (void)any_valid;
      const float got = out[b * c.n + n];
      if (std::isinf(s)) {
        CHECK(std::isinf(got) && got < 0, "%s empty doc score %g", k.name, got);
      } else {
        CHECK(std::fabs(got - s) <= 1e-5 * (1.0 + std::fabs(s)), "%s %s score b=%ld n=%ld %g vs %g",
              k.name, bf16 ? "bf16" : "f32", long(b), long(n), got, s);
      }
    }
  }
}

static void run_int8(const Kernels& k, const Case& c, std::mt19937& rng) {
  std::uniform_int_distribution<int> C(-128, 127);
  std::uniform_int_distribution<int> L(0, static_cast<int>(c.ld));
  std::uniform_real_distribution<float> S(0.001f, 0.02f);
  std::vector<int8_t> q(c.nq * c.lq * c.d), docs(c.n * c.ld * c.d);
  for (auto& x : q) x = static_cast<int8_t>(C(rng));
  for (auto& x : docs) x = static_cast<int8_t>(C(rng));
  std::vector<float> qs(c.nq * c.lq), qw(c.nq * c.lq), ds(c.n * c.ld);
  for (auto& x : qs) x = S(rng);
  for (auto& x : ds) x = S(rng);
  for (auto& x : qw) x = (rng() % 5) ? 1.f : 0.f;
  std::vector<int32_t> len(c.n);
  for (auto& x : len) x = L(rng);
  std::vector<uint8_t> mask(c.n * c.ld);
  for (auto& x : mask) x = (rng() % 4) != 0;
  std::vector<float> out(c.nq * c.n);
  std::vector<int32_t> am(c.nq * c.n * c.lq);
  std::vector<const void*> qp(c.nq);
  std::vector<const float*> qwp(c.nq), qsp(c.nq);
  std::vector<float*> op(c.nq);
  std::vector<int32_t*> ap(c.nq);
  for (int64_t b = 0; b < c.nq; ++b) {
    qp[b] = q.data() + b * c.lq * c.d;
    qwp[b] = qw.data() + b * c.lq;
    qsp[b] = qs.data() + b * c.lq;
    op[b] = out.data() + b * c.n;
    ap[b] = am.data() + b * c.n * c.lq;
  }
  MaxsimJob job;
  job.nq = c.nq; job.lq = c.lq; job.d = c.d; job.ld = c.ld;
  job.q = qp.data(); job.qw = qwp.data(); job.qs = qsp.data();
  job.docs = docs.data(); job.ds = ds.data(); job.lengths = len.data();
  job.mask = c.use_mask ? mask.data() : nullptr;
  job.out = op.data(); job.argmax = c.want_argmax ? ap.data() : nullptr;
  job.n0 = 0; job.n1 = c.n;
  k.maxsim_i8(job);
  for (int64_t b = 0; b < c.nq; ++b) {
    for (int64_t n = 0; n < c.n; ++n) {
      double s = 0.0;
      for (int64_t i = 0; i < c.lq; ++i) {
        float m = -INFINITY;
        int32_t arg = 0;
        for (int64_t j = 0; j < len[n]; ++j) {
          if (c.use_mask && !mask[n * c.ld + j]) continue;
          int32_t dot = 0;
          for (int64_t t = 0; t < c.d; ++t)
            dot += int32_t(q[(b * c.lq + i) * c.d + t]) * int32_t(docs[(n * c.ld + j) * c.d + t]);
          const float v = static_cast<float>(dot) * ds[n * c.ld + j];  // same rounding as kernel
          if (v > m) { m = v; arg = static_cast<int32_t>(j); }
        }
        if (qw[b * c.lq + i] != 0.f) s += double(qw[b * c.lq + i] * qs[b * c.lq + i]) * m;
        if (c.want_argmax)
          CHECK(am[(b * c.n + n) * c.lq + i] == arg, "%s int8 argmax b=%ld n=%ld i=%ld %d vs %d",
                k.name, long(b), long(n), long(i), am[(b * c.n + n) * c.lq + i], arg);
      }
      const float got = out[b * c.n + n];
      if (std::isinf(s))
        CHECK(std::isinf(got) && got < 0, "%s int8 empty doc score %g", k.name, got);
      else
        CHECK(got == static_cast<float>(s), "%s int8 score b=%ld n=%ld %.9g vs %.9g", k.name,
              long(b), long(n), got, s);
    }
  }
}

static void run_pairwise(const Kernels& k, int64_t nq, int64_t d, int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> C(-128, 127);
  std::vector<int8_t> q(nq * d), codes(n * d);
  for (auto& x : q) x = static_cast<int8_t>(C(rng));
  for (auto& x : codes) x = static_cast<int8_t>(C(rng));
  if (!q.empty()) q[0] = -128;
  if (!codes.empty()) codes[0] = -128;
  std::vector<int32_t> out(nq * n, 99);
  k.dot_i8(q.data(), nq, d, codes.data(), 0, n / 3, out.data(), n);
  k.dot_i8(q.data(), nq, d, codes.data(), n / 3, n, out.data(), n);
  std::vector<uint8_t> qb(q.begin(), q.end()), cb(codes.begin(), codes.end());
  std::vector<int32_t> ham(nq * n, 99);
  k.hamming(qb.data(), nq, d, cb.data(), 0, n, ham.data(), n);
  for (int64_t b = 0; b < nq; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      int32_t dot = 0, h = 0;
      for (int64_t t = 0; t < d; ++t) {
        dot += int32_t(q[b * d + t]) * int32_t(codes[i * d + t]);
        h += __builtin_popcount(unsigned(qb[b * d + t] ^ cb[i * d + t]));
      }
      CHECK(out[b * n + i] == dot, "%s dot_i8 d=%ld %d vs %d", k.name, long(d), out[b * n + i], dot);
      CHECK(ham[b * n + i] == h, "%s hamming d=%ld %d vs %d", k.name, long(d), ham[b * n + i], h);
    }
  }
}

// f32 MaxSim on adversarial data for the int8-screened path (JAXRANK_F32_SCREEN=1):
// near-duplicate document tokens that int8 cannot tell apart (gaps far above
// f32 rounding, far below int8 resolution), exact duplicates (first index
// wins), zero query tokens, and tokens of magnitude 2^-60 / 2^60 (which take
// the plain-kernel fallback). The arg-max must equal the float64 one exactly.
static void run_f32_ties(const Kernels& k, int64_t d, std::mt19937& rng) {
  const int64_t nq = 2, lq = 40, n = 6, ld = 37;
  std::normal_distribution<float> G;
  std::vector<float> q(nq * lq * d), docs(n * ld * d), qw(nq * lq, 1.f);
  for (auto& x : q) x = G(rng);
  for (int64_t t = 0; t < d; ++t) q[5 * d + t] = 0.f;  // zero query token
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> base(d);
    for (auto& x : base) x = G(rng);
    for (int64_t j = 0; j < ld; ++j)
      for (int64_t t = 0; t < d; ++t)
        docs[(i * ld + j) * d + t] = base[t] * (1.f + 1e-3f * float(j % 7)) + 1e-3f * G(rng);
    // exact duplicates of token 3 later in the document
    for (int64_t t = 0; t < d; ++t) docs[(i * ld + 20) * d + t] = docs[(i * ld + 3) * d + t];
  }
  for (int64_t t = 0; t < d; ++t) docs[(2 * ld + 4) * d + t] *= 0x1p-60f;  // fallback docs
  for (int64_t t = 0; t < d; ++t) docs[(3 * ld + 4) * d + t] *= 0x1p60f;
  for (int64_t t = 0; t < d; ++t) q[(lq + 7) * d + t] *= 0x1p-40f;  // tiny but screened
  std::vector<int32_t> len(n, static_cast<int32_t>(ld));
  len[5] = 1;
  std::vector<float> out(nq * n);
  std::vector<int32_t> am(nq * n * lq);
  std::vector<const void*> qp(nq);
  std::vector<const float*> qwp(nq);
  std::vector<float*> op(nq);
  std::vector<int32_t*> ap(nq);
  for (int64_t b = 0; b < nq; ++b) {
    qp[b] = q.data() + b * lq * d;
    qwp[b] = qw.data() + b * lq;
    op[b] = out.data() + b * n;
    ap[b] = am.data() + b * n * lq;
  }
  MaxsimJob job;
  job.nq = nq; job.lq = lq; job.d = d; job.ld = ld;
  job.q = qp.data(); job.qw = qwp.data(); job.docs = docs.data(); job.lengths = len.data();
  job.out = op.data(); job.argmax = ap.data(); job.n0 = 0; job.n1 = n;
  k.maxsim_f32(job);
  for (int64_t b = 0; b < nq; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int64_t r = 0; r < lq; ++r) {
        double m = -INFINITY;
        int32_t arg = 0;
        for (int64_t j = 0; j < len[i]; ++j) {
          double dot = 0.0;
          for (int64_t t = 0; t < d; ++t)
            dot += double(q[(b * lq + r) * d + t]) * docs[(i * ld + j) * d + t];
          if (dot > m) { m = dot; arg = static_cast<int32_t>(j); }
        }
        s += m;
        const int32_t got = am[(b * n + i) * lq + r];
        // Zero query token: every dot is 0, first index wins.
        CHECK(got == arg, "%s ties d=%ld argmax b=%ld n=%ld i=%ld got %d want %d", k.name,
              long(d), long(b), long(i), long(r), got, arg);
      }
      const float got = out[b * n + i];
      CHECK(std::fabs(got - s) <= 1e-5 * (1.0 + std::fabs(s)), "%s ties d=%ld score %g vs %g",
            k.name, long(d), got, s);
    }
  }
}

int main() {
  std::vector<const Kernels*> tables{&jaxrank::generic_kernels()};
  if (jaxrank::cpu_has_avx2_path()) tables.push_back(&jaxrank::avx2_kernels());
  if (jaxrank::cpu_has_avx512_path()) tables.push_back(&jaxrank::avx512_kernels());
  const Case cases[] = {
      {1, 1, 1, 3, 1, false, true},   {2, 1, 7, 5, 4, true, true},
      {3, 32, 128, 9, 13, false, true}, {2, 33, 67, 7, 19, true, true},
      {1, 17, 130, 4, 30, false, false}, {2, 80, 16, 3, 25, true, true},
      {1, 5, 3, 0, 6, false, true},   {2, 130, 9, 2, 8, false, true},
      {2, 32, 0, 3, 5, true, true},  // D = 0 (every dot is 0)
  };
  std::mt19937 rng(1234);
  for (const Kernels* k : tables) {
    std::printf("kernels: %s\n", k->name);
    for (const Case& c : cases) {
      run_float(*k, c, rng, false);
      run_float(*k, c, rng, true);
      run_int8(*k, c, rng);
    }
    for (int64_t d : {1, 3, 8, 63, 64, 65, 127, 384}) run_pairwise(*k, 2, d, 11, rng);
    run_pairwise(*k, 1, 16, 0, rng);
    for (int64_t d : {128, 67}) run_f32_ties(*k, d, rng);
  }
  std::printf("best: %s, failures: %d\n", jaxrank::best_kernels().name, failures);
  return failures ? 1 : 0;
}
