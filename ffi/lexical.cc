// Host-side lexical search: postings accumulation and top-k selection in one pass.
//
// Not an XLA kernel: a plain C function exported from the native library and called
// with ctypes by jaxrank/retrieve/_native_search.py (the query path of a Searcher is
// host-side, so a ctypes call avoids jit dispatch and device transfers).
//
// Index: CSR postings term -> (doc, precomputed weight), ascending doc within a term.
// Query q (row of terms/weights/where [Q, T]): for each term slot t in order,
//   acc[d] += post_w[j] * weights[q, t]      (float32 multiply, then float32 add)
// then score[d] = fma(q_len[q], prior[d], acc[d] + q_const[q]), which is bit for bit
// the pure-JAX path (jaxrank/retrieve/_search.py: scatter-add in the same order, then
// the same adds; XLA:CPU contracts the final multiply-add into an FMA on CPUs that
// have one, as every x86-64 CPU since 2013 does). Without a prior (all zero) only the touched documents are
// scored; every untouched document has the same score (0 + q_const) + 0 and they are
// merged in index order. Order of the result: score descending (total order of the
// float bits, as jaxrank.topk._ukey), ties by the smaller document index.
//
// Workspaces (a zeroed float accumulator, a touched list and flags per thread, each
// n_docs long) are kept in a pool between calls so that repeated calls do not fault
// fresh pages in; jaxrank_lexical_release() frees them.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define JR_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Workspace {
  int64_t n = 0;
  std::vector<float> acc;       // zero between queries
  std::vector<uint8_t> flag;    // zero between queries
  std::vector<int32_t> touched;
  std::vector<uint64_t> keys;
  explicit Workspace(int64_t n_docs)
      : n(n_docs), acc(n_docs, 0.0f), flag(n_docs, 0), touched(n_docs + 1), keys() {}
};

std::mutex g_pool_mu;
std::vector<std::unique_ptr<Workspace>> g_pool;

std::unique_ptr<Workspace> acquire(int64_t n) {
  {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    for (size_t i = 0; i < g_pool.size(); ++i) {
      if (g_pool[i]->n == n) {
        std::unique_ptr<Workspace> ws = std::move(g_pool[i]);
        g_pool.erase(g_pool.begin() + static_cast<std::ptrdiff_t>(i));
        return ws;
      }
    }
  }
  return std::make_unique<Workspace>(n);
}

void release(std::unique_ptr<Workspace> ws) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  // keep a few, dropping those of other corpus sizes first
  if (g_pool.size() >= 8) g_pool.erase(g_pool.begin());
  g_pool.push_back(std::move(ws));
}

// float32 -> uint32 with the same order (jaxrank.topk._ukey).
inline uint32_t ukey(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b >> 31) ? ~b : (b | 0x80000000u);
}

// Dense scores of every document: fma(ql, prior, acc + qc) packed as keys.
#define JR_DENSE_BODY(FMA)                                                     \
  for (int64_t d = 0; d < n; ++d) {                                            \
    const float s = FMA(ql, prior[d], acc[d] + qc);                            \
    uint32_t b;                                                                \
    std::memcpy(&b, &s, 4);                                                    \
    const uint32_t key = (b >> 31) ? ~b : (b | 0x80000000u);                   \
    keys[d] = (static_cast<uint64_t>(key) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(d)); \
  }

__attribute__((target("fma"))) void dense_keys_fma(const float* acc, const float* prior, float qc,
                                                   float ql, int64_t n, uint64_t* keys) {
  JR_DENSE_BODY(__builtin_fmaf)
}
void dense_keys_soft(const float* acc, const float* prior, float qc, float ql, int64_t n,
                     uint64_t* keys) {
  JR_DENSE_BODY(std::fma)
}
const bool g_has_fma = __builtin_cpu_supports("fma");

inline float dense_score(float acc, float qc, float ql, float prior) {
  return std::fma(ql, prior, acc + qc);
}

// Larger is better: score key, then the smaller document index.
inline uint64_t pack(uint32_t key, int32_t doc) {
  return (static_cast<uint64_t>(key) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(doc));
}
inline int32_t doc_of(uint64_t p) { return static_cast<int32_t>(0xFFFFFFFFu - (p & 0xFFFFFFFFu)); }

// The best min(k, m) of keys[0:m], sorted best first, in place.
void select_sorted(std::vector<uint64_t>& keys, int64_t m, int64_t k) {
  uint64_t* a = keys.data();
  if (m > k) {
    if (k <= 64) {
      // min-heap of the best k seen so far; most entries are rejected by one compare
      std::make_heap(a, a + k, std::greater<uint64_t>());
      for (int64_t i = k; i < m; ++i) {
        if (a[i] > a[0]) {
          std::pop_heap(a, a + k, std::greater<uint64_t>());
          a[k - 1] = a[i];
          std::push_heap(a, a + k, std::greater<uint64_t>());
        }
      }
    } else {
      std::nth_element(a, a + k, a + m, std::greater<uint64_t>());
    }
    m = k;
  }
  std::sort(a, a + m, std::greater<uint64_t>());
}

struct Args {
  int64_t n_docs;
  const int64_t* term_ptr;
  const int32_t* post_doc;
  const float* post_w;
  const float* prior;  // nullable: all zero
  int64_t n_t;
  const int32_t* terms;
  const float* weights;
  const uint8_t* where;
  const float* q_const;
  const float* q_len;
  int64_t k;
  float* out_s;
  int32_t* out_i;
  uint8_t* out_v;
};

void search_one(const Args& a, int64_t q, Workspace& ws) {
  float* acc = ws.acc.data();
  uint8_t* flag = ws.flag.data();
  int32_t* touched = ws.touched.data();
  int64_t m = 0;
  const int32_t* tq = a.terms + q * a.n_t;
  const float* wq = a.weights + q * a.n_t;
  const uint8_t* mq = a.where + q * a.n_t;
  for (int64_t t = 0; t < a.n_t; ++t) {
    if (!mq[t]) continue;
    const float bw = wq[t];
    const int64_t lo = a.term_ptr[tq[t]], hi = a.term_ptr[tq[t] + 1];
    for (int64_t j = lo; j < hi; ++j) {
      const int32_t d = a.post_doc[j];
      const float w = a.post_w[j] * bw;
      acc[d] += w;
      touched[m] = d;
      m += flag[d] ^ 1;
      flag[d] = 1;
    }
  }
  const float qc = a.q_const[q], ql = a.q_len[q];
  const int64_t k = a.k;
  float* os = a.out_s + q * k;
  int32_t* oi = a.out_i + q * k;
  uint8_t* ov = a.out_v + q * k;
  std::vector<uint64_t>& keys = ws.keys;
  if (a.prior != nullptr) {  // every document has its own score
    const int64_t n = a.n_docs;
    if (static_cast<int64_t>(keys.size()) < n) keys.resize(n);
    (g_has_fma ? dense_keys_fma : dense_keys_soft)(acc, a.prior, qc, ql, n, keys.data());
    select_sorted(keys, n, k);
    for (int64_t r = 0; r < k; ++r) {
      const int32_t d = doc_of(keys[r]);
      const float s = dense_score(acc[d], qc, ql, a.prior[d]);
      os[r] = s;
      oi[r] = d;
      ov[r] = s > -INFINITY;
    }
  } else {
    if (static_cast<int64_t>(keys.size()) < m) keys.resize(m);
    for (int64_t i = 0; i < m; ++i) {
      const int32_t d = touched[i];
      const float s = (acc[d] + qc) + 0.0f;
      keys[i] = pack(ukey(s), d);
    }
    const int64_t mt = std::min(m, k);
    select_sorted(keys, m, k);
    // merge with the untouched documents (score `base`, ascending index)
    const float base = (0.0f + qc) + 0.0f;
    const uint32_t bkey = ukey(base);
    int64_t it = 0;
    int32_t u = 0;  // next candidate untouched document
    const int32_t n = static_cast<int32_t>(a.n_docs);
    while (u < n && flag[u]) ++u;
    for (int64_t r = 0; r < k; ++r) {
      const bool take_t =
          it < mt && (u >= n || keys[it] > pack(bkey, u));
      int32_t d;
      float s;
      if (take_t) {
        d = doc_of(keys[it++]);
        s = (acc[d] + qc) + 0.0f;
      } else {
        d = u++;
        s = base;
        while (u < n && flag[u]) ++u;
      }
      os[r] = s;
      oi[r] = d;
      ov[r] = s > -INFINITY;
    }
  }
  for (int64_t i = 0; i < m; ++i) {  // leave the workspace zeroed
    acc[touched[i]] = 0.0f;
    flag[touched[i]] = 0;
  }
}

}  // namespace

// Top-k of n_q weighted term queries over a CSR postings index (see the file comment).
// where: [n_q, n_t] uint8 (0/1); terms must be valid ids where set; 1 <= k <= n_docs.
// Returns 0, or -1 for invalid sizes.
JR_EXPORT int32_t jaxrank_lexical_search(int64_t n_docs, const int64_t* term_ptr,
                                         const int32_t* post_doc, const float* post_w,
                                         const float* prior, int64_t n_q, int64_t n_t,
                                         const int32_t* terms, const float* weights,
                                         const uint8_t* where, const float* q_const,
                                         const float* q_len, int64_t k, int32_t n_threads,
                                         float* out_s, int32_t* out_i, uint8_t* out_v) {
  if (n_docs < 1 || n_docs > INT32_MAX || k < 1 || k > n_docs || n_q < 0 || n_t < 0) return -1;
  Args a{n_docs, term_ptr, post_doc, post_w, prior, n_t,   terms, weights,
         where,  q_const,  q_len,    k,      out_s, out_i, out_v};
  int64_t threads = std::max<int64_t>(1, std::min<int64_t>(n_threads, n_q));
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    std::unique_ptr<Workspace> ws = acquire(n_docs);
    for (int64_t q; (q = next.fetch_add(1)) < n_q;) search_one(a, q, *ws);
    release(std::move(ws));
  };
  if (threads == 1) {
    work();
    return 0;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int64_t i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  return 0;
}

// Frees the pooled workspaces.
JR_EXPORT void jaxrank_lexical_release() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  g_pool.clear();
}
