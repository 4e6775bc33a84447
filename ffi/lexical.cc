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
// have one, as every x86-64 CPU since 2013 does). Without a prior (all zero) the
// score is (acc[d] + q_const[q]) + 0.
//
// Two modes per query:
// * dense (a prior, or postings >= n_docs / 4): accumulate, score every document,
//   select over all of them (in document order, so ties resolve by index for free);
// * sparse: track the touched documents, select among them, and merge with the
//   untouched ones, which all score (0 + q_const) + 0, in index order.
// Selection: k <= 64, a min-heap behind a threshold test; larger k, a histogram
// pre-filter to the buckets holding the top k, an LSD radix sort of the survivors by
// score (stable), and sorting runs of equal scores by index where the input was not
// in index order. Order of the result: score descending (total order of the float
// bits, as jaxrank.topk._ukey), ties by the smaller document index.
//
// Workspaces (per thread, n_docs long; the accumulator and flags are kept zeroed) are
// pooled between calls so that repeated calls do not fault fresh pages in;
// jaxrank_lexical_release() frees them.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define JR_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Workspace {
  int64_t n = 0;
  std::vector<float> acc;     // zero between queries
  std::vector<uint8_t> flag;  // zero between queries
  std::vector<int32_t> touched, docs, docs2;
  std::vector<uint32_t> keys, keys2;
  std::vector<uint64_t> heap;
  std::vector<int32_t> sel;
  explicit Workspace(int64_t n_docs)
      : n(n_docs),
        acc(n_docs, 0.0f),
        flag(n_docs, 0),
        touched(n_docs + 1),
        docs(n_docs),
        docs2(n_docs),
        keys(n_docs),
        keys2(n_docs) {}
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
  if (g_pool.size() >= 8) g_pool.erase(g_pool.begin());  // the oldest first
  g_pool.push_back(std::move(ws));
}

// float32 -> uint32 with the same order (jaxrank.topk._ukey).
inline uint32_t ukey(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b >> 31) ? ~b : (b | 0x80000000u);
}

// Larger is better: score key, then the smaller document index.
inline uint64_t pack(uint32_t key, int32_t doc) {
  return (static_cast<uint64_t>(key) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(doc));
}
inline int32_t doc_of(uint64_t p) { return static_cast<int32_t>(0xFFFFFFFFu - (p & 0xFFFFFFFFu)); }

// Dense scores: s[d] = fma(ql, prior[d], s[d] + qc) in place, and their keys.
#define JR_DENSE_BODY(FMA)                  \
  for (int64_t d = 0; d < n; ++d) {         \
    const float v = FMA(ql, prior[d], s[d] + qc); \
    s[d] = v;                               \
    uint32_t b;                             \
    std::memcpy(&b, &v, 4);                 \
    keys[d] = (b >> 31) ? ~b : (b | 0x80000000u); \
  }

__attribute__((target("fma"))) void prior_scores_fma(float* s, const float* prior, float qc,
                                                     float ql, int64_t n, uint32_t* keys) {
  JR_DENSE_BODY(__builtin_fmaf)
}
void prior_scores_soft(float* s, const float* prior, float qc, float ql, int64_t n,
                       uint32_t* keys) {
  JR_DENSE_BODY(std::fma)
}
const bool g_has_fma = __builtin_cpu_supports("fma");

void plain_scores(float* s, float qc, int64_t n, uint32_t* keys) {
  for (int64_t d = 0; d < n; ++d) {
    const float v = (s[d] + qc) + 0.0f;
    s[d] = v;
    uint32_t b;
    std::memcpy(&b, &v, 4);
    keys[d] = (b >> 31) ? ~b : (b | 0x80000000u);
  }
}

// Top min(k, m) of (keys[i], docs[i]) (docs == nullptr: docs[i] = i), best first, into
// out. k <= 64: a min-heap; an entry must beat its worst entry (key >= the worst key,
// then the packed comparison).
int64_t select_small(const uint32_t* keys, const int32_t* docs, int64_t m, int64_t k,
                     std::vector<uint64_t>& heap_buf, int32_t* out) {
  const int64_t kk = std::min(k, m);
  if (static_cast<int64_t>(heap_buf.size()) < kk) heap_buf.resize(kk);
  uint64_t* h = heap_buf.data();
  for (int64_t i = 0; i < kk; ++i) h[i] = pack(keys[i], docs ? docs[i] : static_cast<int32_t>(i));
  std::make_heap(h, h + kk, std::greater<uint64_t>());
  uint32_t thr = static_cast<uint32_t>(h[0] >> 32);
  int64_t i = kk;
  if (docs == nullptr) {
    // documents in index order: a later document wins only with a strictly larger key
    for (; i + 16 <= m; i += 16) {
      uint32_t mx = 0;
      for (int j = 0; j < 16; ++j) mx = std::max(mx, keys[i + j]);
      if (mx <= thr) continue;
      for (int j = 0; j < 16; ++j) {
        if (keys[i + j] > thr) {
          std::pop_heap(h, h + kk, std::greater<uint64_t>());
          h[kk - 1] = pack(keys[i + j], static_cast<int32_t>(i + j));
          std::push_heap(h, h + kk, std::greater<uint64_t>());
          thr = static_cast<uint32_t>(h[0] >> 32);
        }
      }
    }
    for (; i < m; ++i) {
      if (keys[i] > thr) {
        std::pop_heap(h, h + kk, std::greater<uint64_t>());
        h[kk - 1] = pack(keys[i], static_cast<int32_t>(i));
        std::push_heap(h, h + kk, std::greater<uint64_t>());
        thr = static_cast<uint32_t>(h[0] >> 32);
      }
    }
  } else {
    for (; i < m; ++i) {
      if (keys[i] < thr) continue;
      const uint64_t p = pack(keys[i], docs[i]);
      if (p > h[0]) {
        std::pop_heap(h, h + kk, std::greater<uint64_t>());
        h[kk - 1] = p;
        std::push_heap(h, h + kk, std::greater<uint64_t>());
        thr = static_cast<uint32_t>(h[0] >> 32);
      }
    }
  }
  std::sort(h, h + kk, std::greater<uint64_t>());
  for (int64_t r = 0; r < kk; ++r) out[r] = doc_of(h[r]);
  return kk;
}

// Large k: keep the histogram buckets (of the key range) that hold the top k, radix
// sort them by key descending (stable), order runs of equal keys by index unless the
// input was in index order, and write the first min(k, m) documents.
int64_t select_large(const uint32_t* keys, const int32_t* docs, int64_t m, int64_t k,
                     Workspace& ws, int32_t* out) {
  uint32_t* ka = ws.keys2.data();  // survivors, as ~key (ascending = best first)
  int32_t* da = ws.docs2.data();
  int64_t c = 0;
  if (m > 2 * k) {
    uint32_t lo = 0xFFFFFFFFu, hi = 0;
    for (int64_t i = 0; i < m; ++i) {
      lo = std::min(lo, keys[i]);
      hi = std::max(hi, keys[i]);
    }
    const uint32_t range = hi - lo;
    const int bits = range ? 32 - __builtin_clz(range) : 0;
    const int shift = std::max(0, bits - 11);
    uint32_t hist[2048] = {0};
    for (int64_t i = 0; i < m; ++i) ++hist[(keys[i] - lo) >> shift];
    int64_t b = ((range) >> shift), cum = 0;
    for (; b > 0; --b) {
      cum += hist[b];
      if (cum >= k) break;
    }
    const uint32_t cut = lo + (static_cast<uint32_t>(b) << shift);  // keep keys >= cut
    for (int64_t i = 0; i < m; ++i) {
      if (keys[i] >= cut) {
        ka[c] = ~keys[i];
        da[c] = docs ? docs[i] : static_cast<int32_t>(i);
        ++c;
      }
    }
  } else {
    for (int64_t i = 0; i < m; ++i) {
      ka[c] = ~keys[i];
      da[c] = docs ? docs[i] : static_cast<int32_t>(i);
      ++c;
    }
  }
  // LSD radix sort of (ka, da) by ka, 4 passes of 8 bits (skipping trivial passes)
  uint32_t cnt[4][256] = {{0}};
  for (int64_t i = 0; i < c; ++i) {
    const uint32_t x = ka[i];
    ++cnt[0][x & 255];
    ++cnt[1][(x >> 8) & 255];
    ++cnt[2][(x >> 16) & 255];
    ++cnt[3][x >> 24];
  }
  // scratch: ws.keys may be the input `keys`, but every read of the input is above
  uint32_t* kb = ws.keys.data();
  int32_t* db = ws.docs.data();
  for (int p = 0; p < 4; ++p) {
    const int sh = 8 * p;
    if (cnt[p][(ka[0] >> sh) & 255] == static_cast<uint32_t>(c)) continue;  // one bucket
    uint32_t pos[256];
    uint32_t run = 0;
    for (int j = 0; j < 256; ++j) {
      pos[j] = run;
      run += cnt[p][j];
    }
    for (int64_t i = 0; i < c; ++i) {
      const uint32_t j = (ka[i] >> sh) & 255;
      kb[pos[j]] = ka[i];
      db[pos[j]] = da[i];
      ++pos[j];
    }
    std::swap(ka, kb);
    std::swap(da, db);
  }
  const int64_t kk = std::min(k, c);
  if (docs != nullptr) {  // equal keys: smaller index first (input not in index order)
    int64_t i = 0;
    while (i < kk) {
      int64_t j = i + 1;
      while (j < c && ka[j] == ka[i]) ++j;
      if (j - i > 1) std::sort(da + i, da + j);
      i = j;
    }
  }
  std::memcpy(out, da, static_cast<size_t>(kk) * sizeof(int32_t));
  return kk;
}

int64_t select_top(const uint32_t* keys, const int32_t* docs, int64_t m, int64_t k,
                   Workspace& ws, int32_t* out) {
  if (m == 0) return 0;
  if (k <= 64) return select_small(keys, docs, m, k, ws.heap, out);
  return select_large(keys, docs, m, k, ws, out);
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
  int32_t mode;  // 0: choose per query, 1: dense, 2: sparse
  float* out_s;
  int32_t* out_i;
  uint8_t* out_v;
};

void search_one(const Args& a, int64_t q, Workspace& ws) {
  float* acc = ws.acc.data();
  const int64_t n = a.n_docs, k = a.k;
  const int32_t* tq = a.terms + q * a.n_t;
  const float* wq = a.weights + q * a.n_t;
  const uint8_t* mq = a.where + q * a.n_t;
  const float qc = a.q_const[q], ql = a.q_len[q];
  float* os = a.out_s + q * k;
  int32_t* oi = a.out_i + q * k;
  uint8_t* ov = a.out_v + q * k;
  int64_t total = 0;
  for (int64_t t = 0; t < a.n_t; ++t)
    if (mq[t]) total += a.term_ptr[tq[t] + 1] - a.term_ptr[tq[t]];

  const bool dense = a.prior != nullptr || (a.mode == 0 ? 4 * total >= n : a.mode == 1);
  if (dense) {
    for (int64_t t = 0; t < a.n_t; ++t) {
      if (!mq[t]) continue;
      const float bw = wq[t];
      const int64_t lo = a.term_ptr[tq[t]], hi = a.term_ptr[tq[t] + 1];
      const int32_t* pd = a.post_doc;
      const float* pw = a.post_w;
      for (int64_t j = lo; j < hi; ++j) acc[pd[j]] += pw[j] * bw;
    }
    uint32_t* keys = ws.keys.data();
    if (a.prior != nullptr)
      (g_has_fma ? prior_scores_fma : prior_scores_soft)(acc, a.prior, qc, ql, n, keys);
    else
      plain_scores(acc, qc, n, keys);
    const int64_t kk = select_top(keys, nullptr, n, k, ws, oi);  // kk == k (k <= n)
    for (int64_t r = 0; r < kk; ++r) {
      os[r] = acc[oi[r]];
      ov[r] = os[r] > -INFINITY;
    }
    std::memset(acc, 0, static_cast<size_t>(n) * sizeof(float));
    return;
  }

  // sparse: track the touched documents
  uint8_t* flag = ws.flag.data();
  int32_t* touched = ws.touched.data();
  int64_t m = 0;
  for (int64_t t = 0; t < a.n_t; ++t) {
    if (!mq[t]) continue;
    const float bw = wq[t];
    const int64_t lo = a.term_ptr[tq[t]], hi = a.term_ptr[tq[t] + 1];
    for (int64_t j = lo; j < hi; ++j) {
      const int32_t d = a.post_doc[j];
      acc[d] += a.post_w[j] * bw;
      touched[m] = d;
      m += flag[d] ^ 1;
      flag[d] = 1;
    }
  }
  uint32_t* keys = ws.keys.data();
  for (int64_t i = 0; i < m; ++i) {
    const int32_t d = touched[i];
    const float s = (acc[d] + qc) + 0.0f;
    acc[d] = s;
    keys[i] = ukey(s);
  }
  if (static_cast<int64_t>(ws.sel.size()) < std::min(k, m)) ws.sel.resize(std::min(k, m));
  int32_t* sel = ws.sel.data();
  const int64_t mt = select_top(keys, touched, m, k, ws, sel);
  // merge with the untouched documents (score `base`, ascending index)
  const float base = (0.0f + qc) + 0.0f;
  const uint64_t bkey = static_cast<uint64_t>(ukey(base)) << 32;
  int64_t it = 0;
  int32_t u = 0;  // next untouched document
  const int32_t n32 = static_cast<int32_t>(n);
  while (u < n32 && flag[u]) ++u;
  for (int64_t r = 0; r < k; ++r) {
    bool take_t = it < mt;
    if (take_t && u < n32) {
      const int32_t d = sel[it];
      take_t = pack(ukey(acc[d]), d) > (bkey | (0xFFFFFFFFu - static_cast<uint32_t>(u)));
    }
    if (take_t) {
      const int32_t d = sel[it++];
      os[r] = acc[d];
      oi[r] = d;
    } else {
      os[r] = base;
      oi[r] = u++;
      while (u < n32 && flag[u]) ++u;
    }
    ov[r] = os[r] > -INFINITY;
  }
  for (int64_t i = 0; i < m; ++i) {  // leave the workspace zeroed
    acc[touched[i]] = 0.0f;
    flag[touched[i]] = 0;
  }
}

}  // namespace

// Top-k of n_q weighted term queries over a CSR postings index (see the file comment).
// where: [n_q, n_t] uint8 (0/1); terms must be valid ids where set; 1 <= k <= n_docs.
// mode: 0 chooses dense or sparse per query, 1 forces dense, 2 sparse (for tests; a
// prior always means dense). Returns 0, or -1 for invalid sizes.
JR_EXPORT int32_t jaxrank_lexical_search(int64_t n_docs, const int64_t* term_ptr,
                                         const int32_t* post_doc, const float* post_w,
                                         const float* prior, int64_t n_q, int64_t n_t,
                                         const int32_t* terms, const float* weights,
                                         const uint8_t* where, const float* q_const,
                                         const float* q_len, int64_t k, int32_t n_threads,
                                         int32_t mode, float* out_s, int32_t* out_i,
                                         uint8_t* out_v) {
  if (n_docs < 1 || n_docs > INT32_MAX || k < 1 || k > n_docs || n_q < 0 || n_t < 0) return -1;
  if (mode < 0 || mode > 2) return -1;
  Args a{n_docs, term_ptr, post_doc, post_w, prior, n_t,  terms, weights, where,
         q_const, q_len,   k,        mode,   out_s, out_i, out_v};
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(n_threads, n_q));
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
