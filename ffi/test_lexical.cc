// Sanitizer harness of ffi/lexical.cc (built with ASan + UBSan by tests/test_retrieve.py):
// random CSR indexes and queries with many ties, every kernel mode and thread count,
// checked against a brute-force reference (every document scored in the same float32
// order, then a full sort by (score bits descending, index ascending)).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cctype>
#include <random>
#include <string>
#include <vector>

extern "C" int32_t jaxrank_lexical_search(int64_t, const int64_t*, const int32_t*, const float*,
                                          const float*, int64_t, int64_t, const int32_t*,
                                          const float*, const uint8_t*, const float*,
                                          const float*, int64_t, int32_t, int32_t, float*,
                                          int32_t*, uint8_t*);
extern "C" void jaxrank_lexical_release();
extern "C" int64_t jaxrank_tokenize_ascii(const char*, const int64_t*, int64_t, int32_t, int32_t*,
                                          int64_t*, char*, int64_t*, int64_t*);

// The ASCII scanner against a direct re-scan: every token's word is the lowered run.
static int check_tokenizer(std::mt19937& rng) {
  int failures = 0;
  const char alphabet[] = "aZq_9 .-\n";
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t n = rng() % 30;
    std::string buf;
    std::vector<int64_t> start(1, 0);
    for (int64_t d = 0; d < n; ++d) {
      const int64_t len = rng() % 40;
      for (int64_t i = 0; i < len; ++i) buf += alphabet[rng() % (sizeof(alphabet) - 1)];
      start.push_back(static_cast<int64_t>(buf.size()));
    }
    const int64_t cap = static_cast<int64_t>(buf.size()) / 3 + n + 1;  // as the Python caller
    std::vector<int32_t> tok(cap);
    std::vector<int64_t> counts(n + 1), wstart(cap + 1), nw(1);
    std::vector<char> words(buf.size() + cap + 1);
    const int64_t nt = jaxrank_tokenize_ascii(buf.data(), start.data(), n, 1, tok.data(),
                                              counts.data(), words.data(), wstart.data(), nw.data());
    // reference scan
    std::vector<std::string> ref;
    for (int64_t d = 0; d < n; ++d) {
      std::string cur;
      for (int64_t i = start[d]; i <= start[d + 1]; ++i) {
        const char c = i < start[d + 1] ? buf[i] : ' ';
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
          cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
          if (cur.size() >= 2) ref.push_back(cur);
          cur.clear();
        }
      }
    }
    bool good = nt == static_cast<int64_t>(ref.size());
    for (int64_t i = 0; good && i < nt; ++i)
      good = tok[i] >= 0 && tok[i] < nw[0] && ref[i] == std::string(words.data() + wstart[tok[i]]);
    if (!good) {
      ++failures;
      std::printf("FAIL tokenizer rep=%d\n", rep);
    }
  }
  return failures;
}

static uint32_t ukey(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b >> 31) ? ~b : (b | 0x80000000u);
}

int main() {
  std::mt19937 rng(7);
  int failures = 0, cases = 0;
  const int64_t sizes[] = {1, 2, 5, 70, 300, 2000};
  for (int64_t n : sizes) {
    for (int rep = 0; rep < 6; ++rep) {
      const int64_t v = 1 + rng() % 40;
      // CSR postings: each term in a random subset of documents, ascending
      std::vector<int64_t> ptr(v + 1, 0);
      std::vector<int32_t> pd;
      std::vector<float> pw;
      for (int64_t t = 0; t < v; ++t) {
        const double p = (rng() % 100) / 100.0;
        for (int64_t d = 0; d < n; ++d) {
          if ((rng() % 1000) / 1000.0 < p * p) {
            pd.push_back(static_cast<int32_t>(d));
            pw.push_back(static_cast<float>(rng() % 4) * 0.5f);  // ties (and zeros)
          }
        }
        ptr[t + 1] = static_cast<int64_t>(pd.size());
      }
      pd.push_back(0);  // keep data() valid when empty
      pw.push_back(0.0f);
      const bool with_prior = rep % 3 == 0;
      std::vector<float> prior(n);
      for (auto& x : prior) x = -static_cast<float>(rng() % 3) * 0.25f;
      const int64_t nq = 1 + rng() % 20, nt = 1 + rng() % 6;
      std::vector<int32_t> terms(nq * nt);
      std::vector<float> w(nq * nt), qc(nq), ql(nq, 0.0f);
      std::vector<uint8_t> where(nq * nt);
      for (int64_t i = 0; i < nq * nt; ++i) {
        terms[i] = static_cast<int32_t>(rng() % v);
        w[i] = 1.0f + static_cast<float>(rng() % 2);
        where[i] = rng() % 5 != 0;
        if (where[i]) ql[i / nt] += w[i];
      }
      for (auto& x : qc) x = (rng() % 4 == 0) ? 0.25f : 0.0f;
      for (int64_t k : {int64_t{1}, std::min<int64_t>(n, 7), std::min<int64_t>(n, 100), n}) {
        // reference
        std::vector<float> ref_s(nq * k);
        std::vector<int32_t> ref_i(nq * k);
        for (int64_t q = 0; q < nq; ++q) {
          std::vector<float> acc(n, 0.0f);
          for (int64_t t = 0; t < nt; ++t) {
            if (!where[q * nt + t]) continue;
            const int32_t term = terms[q * nt + t];
            for (int64_t j = ptr[term]; j < ptr[term + 1]; ++j) acc[pd[j]] += pw[j] * w[q * nt + t];
          }
          std::vector<int32_t> order(n);
          for (int64_t d = 0; d < n; ++d) {
            acc[d] = with_prior ? std::fma(ql[q], prior[d], acc[d] + qc[q]) : (acc[d] + qc[q]) + 0.0f;
            order[d] = static_cast<int32_t>(d);
          }
          std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            const uint32_t ka = ukey(acc[a]), kb = ukey(acc[b]);
            return ka != kb ? ka > kb : a < b;
          });
          for (int64_t r = 0; r < k; ++r) {
            ref_i[q * k + r] = order[r];
            ref_s[q * k + r] = acc[order[r]];
          }
        }
        for (int32_t mode = 0; mode <= 2; ++mode) {
          for (int32_t threads : {1, 3}) {
            std::vector<float> s(nq * k);
            std::vector<int32_t> idx(nq * k);
            std::vector<uint8_t> ok(nq * k);
            const int32_t rc = jaxrank_lexical_search(
                n, ptr.data(), pd.data(), pw.data(), with_prior ? prior.data() : nullptr, nq, nt,
                terms.data(), w.data(), where.data(), qc.data(), ql.data(), k, threads, mode,
                s.data(), idx.data(), ok.data());
            ++cases;
            bool good = rc == 0;
            for (int64_t i = 0; good && i < nq * k; ++i)
              good = idx[i] == ref_i[i] && ukey(s[i]) == ukey(ref_s[i]) && ok[i] == 1;
            if (!good) {
              ++failures;
              std::printf("FAIL n=%ld v=%ld nq=%ld k=%ld mode=%d threads=%d prior=%d\n",
                          static_cast<long>(n), static_cast<long>(v), static_cast<long>(nq),
                          static_cast<long>(k), mode, threads, with_prior ? 1 : 0);
            }
          }
        }
      }
    }
  }
  // invalid sizes are refused
  float s;
  int32_t i;
  uint8_t ok;
  int64_t ptr0[2] = {0, 0};
  if (jaxrank_lexical_search(1, ptr0, nullptr, nullptr, nullptr, 1, 0, nullptr, nullptr, nullptr,
                             nullptr, nullptr, 2, 1, 0, &s, &i, &ok) != -1)
    ++failures;
  jaxrank_lexical_release();
  failures += check_tokenizer(rng);
  std::printf("cases: %d failures: %d\n", cases, failures);
  return failures != 0;
}
