// Native CPU kernels of jaxrank.soft: stable descending argsort and the
// pool-adjacent-violators (PAV) isotonic regression of the permutahedron
// projection (XLA FFI handlers, CPU only; GPU/TPU keep the pure-JAX path).
//
// Both kernels run one row at a time, rows split over XLA's intra-op thread
// pool when the call is large enough. Every operand is a float32/int32 array
// [..., n] whose leading dimensions are all row dimensions (the caller
// reshapes, `vmap` adds more with vmap_method="broadcast_all").
//
// There is no AVX2/AVX-512 variant: the PAV loop is a sequential scalar
// recurrence (every step depends on the previous merge decision) and the
// radix sort is bound by scattered stores; the portable build compiles both to
// the same code an ISA-specific build would, so no runtime dispatch is needed.
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
#include <string>
#include <vector>

#include "xla/ffi/api/ffi.h"

#include "parallel.h"

namespace ffi = xla::ffi;

namespace {

// ------------------------------------------------------------ thread pool

// f(r0, r1) over row blocks covering [0, rows): on the caller alone for small
// calls, else shared with the pool workers (jaxrank::parallel_for).
void for_rows(ffi::ThreadPool& pool, int64_t rows, int64_t n,
              const std::function<void(int64_t, int64_t)>& f) {
  if (rows <= 0) return;
  // Below ~64k elements a row block costs less than waking a worker.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(n, 1));
  const int64_t items = (rows + chunk - 1) / chunk;
  jaxrank::parallel_for(pool, items, 0, [&](int64_t i) {
    f(i * chunk, std::min(rows, (i + 1) * chunk));
  });
}

// ------------------------------------------------------------ argsort

// Unsigned key whose ascending order is the descending order of the float
// (total order of the bit patterns, as the pure-JAX packed-key path).
inline uint32_t desc_key(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint32_t asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~asc;
}

// Sorts items (key << 32 | index) ascending; the index makes it stable.
void sort_packed(uint64_t* a, uint64_t* tmp, int64_t m) {
  if (m <= 48) {
    for (int64_t i = 1; i < m; ++i) {
      const uint64_t v = a[i];
      int64_t j = i;
      while (j > 0 && a[j - 1] > v) {
        a[j] = a[j - 1];
        --j;
      }
      a[j] = v;
    }
    return;
  }
  // LSD radix sort on the four key bytes (bits 32..63); a byte that is the same
  // for every item is skipped.
  uint32_t hist[4][256];
  std::memset(hist, 0, sizeof(hist));
  for (int64_t i = 0; i < m; ++i) {
    const uint32_t k = static_cast<uint32_t>(a[i] >> 32);
    ++hist[0][k & 255];
    ++hist[1][(k >> 8) & 255];
    ++hist[2][(k >> 16) & 255];
    ++hist[3][k >> 24];
  }
  uint64_t* src = a;
  uint64_t* dst = tmp;
  for (int pass = 0; pass < 4; ++pass) {
    uint32_t* h = hist[pass];
    const int shift = 32 + 8 * pass;
    if (h[(src[0] >> shift) & 255] == static_cast<uint32_t>(m)) continue;
    uint32_t sum = 0;
    for (int b = 0; b < 256; ++b) {
      const uint32_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < m; ++i) dst[h[(src[i] >> shift) & 255]++] = src[i];
    std::swap(src, dst);
  }
  if (src != a) std::memcpy(a, src, sizeof(uint64_t) * m);
}

ffi::Error ArgsortImpl(ffi::ThreadPool pool, ffi::AnyBuffer theta, ffi::AnyBuffer valid,
                       ffi::Result<ffi::AnyBuffer> perm) {
  if (theta.element_type() != ffi::DataType::F32 || valid.element_type() != ffi::DataType::PRED ||
      perm->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument(
        "jaxrank native soft_argsort: expects float32 theta, bool valid, int32 output");
  const auto dims = theta.dimensions();
  if (dims.size() < 1)
    return ffi::Error::InvalidArgument("jaxrank native soft_argsort: theta needs rank >= 1");
  const int64_t n = dims[dims.size() - 1];
  const int64_t total = static_cast<int64_t>(theta.element_count());
  if (static_cast<int64_t>(valid.element_count()) != total ||
      static_cast<int64_t>(perm->element_count()) != total)
    return ffi::Error::InvalidArgument("jaxrank native soft_argsort: operand sizes differ");
  if (n > std::numeric_limits<int32_t>::max())
    return ffi::Error::InvalidArgument("jaxrank native soft_argsort: n exceeds int32");
  if (n == 0 || total == 0) return ffi::Error::Success();
  const int64_t rows = total / n;
  const float* th = static_cast<const float*>(theta.untyped_data());
  const uint8_t* va = static_cast<const uint8_t*>(valid.untyped_data());
  int32_t* out = static_cast<int32_t*>(perm->untyped_data());
  for_rows(pool, rows, n, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> buf(2 * n);
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = th + r * n;
      const uint8_t* v = va + r * n;
      int32_t* o = out + r * n;
      int64_t m = 0;
      for (int64_t i = 0; i < n; ++i)
        if (v[i]) buf[m++] = (static_cast<uint64_t>(desc_key(x[i])) << 32) | uint64_t(i);
      sort_packed(buf.data(), buf.data() + n, m);
      for (int64_t i = 0; i < m; ++i) o[i] = static_cast<int32_t>(buf[i] & 0xFFFFFFFFu);
      // Invalid items after the valid ones, in index order.
      int64_t k = m;
      for (int64_t i = 0; i < n; ++i)
        if (!v[i]) o[k++] = static_cast<int32_t>(i);
    }
  });
  return ffi::Error::Success();
}

// ------------------------------------------------------------ PAV

// Decreasing isotonic regression of one row over its first m items, solved as a
// stack of blocks (pool adjacent violators). Blocks merge while the value of
// the lower block is <= the value of the block above it (equal values merge, so
// ties share a block), as the pure-JAX loop does. Sums are kept in double.
//
// l2: blocks of d = a - b; value = mean(d); outputs mean_B(a), mean_B(b).
// kl: value = lse_B(a) - lse_B(b); outputs lse_B(a), lse_B(b); each logsumexp is
//     kept as (max M, scaled sum S) with lse = M + log S.
// Items >= m are singleton blocks with ids = their position.
struct L2Block {
  int64_t start;
  double d, a, b;
  int64_t count;
  double value;
};

struct KLBlock {
  int64_t start;
  double ma, sa, mb, sb;
  double value;
};

inline void lse_merge(double& m1, double& s1, double m2, double s2) {
  if (m2 > m1) {
    std::swap(m1, m2);
    std::swap(s1, s2);
  }
  if (m2 > -std::numeric_limits<double>::infinity()) s1 += s2 * std::exp(m2 - m1);
}

void pav_l2_row(const float* a, const float* b, int64_t n, int64_t m, float* ma, float* mb,
                int32_t* bid, std::vector<L2Block>& st) {
  int64_t top = 0;  // number of blocks on the stack
  for (int64_t i = 0; i < m; ++i) {
    const double ai = a[i], bi = b[i];
    L2Block cur{i, ai - bi, ai, bi, 1, ai - bi};
    while (top > 0 && st[top - 1].value <= cur.value) {
      const L2Block& p = st[--top];
      cur.start = p.start;
      cur.d += p.d;
      cur.a += p.a;
      cur.b += p.b;
      cur.count += p.count;
      cur.value = cur.d / static_cast<double>(cur.count);
    }
    st[top++] = cur;
  }
  for (int64_t k = 0; k < top; ++k) {
    const L2Block& blk = st[k];
    const int64_t end = k + 1 < top ? st[k + 1].start : m;
    const double inv = 1.0 / static_cast<double>(blk.count);
    const float va = static_cast<float>(blk.a * inv), vb = static_cast<float>(blk.b * inv);
    for (int64_t i = blk.start; i < end; ++i) {
      ma[i] = va;
      mb[i] = vb;
      bid[i] = static_cast<int32_t>(k);
    }
  }
  for (int64_t i = m; i < n; ++i) {
    ma[i] = a[i];
    mb[i] = b[i];
    bid[i] = static_cast<int32_t>(i);
  }
}

void pav_kl_row(const float* a, const float* b, int64_t n, int64_t m, float* la, float* lb,
                int32_t* bid, std::vector<KLBlock>& st) {
  int64_t top = 0;
  for (int64_t i = 0; i < m; ++i) {
    const double ai = a[i], bi = b[i];
    KLBlock cur{i, ai, 1.0, bi, 1.0, ai - bi};
    while (top > 0 && st[top - 1].value <= cur.value) {
      const KLBlock& p = st[--top];
      cur.start = p.start;
      lse_merge(cur.ma, cur.sa, p.ma, p.sa);
      lse_merge(cur.mb, cur.sb, p.mb, p.sb);
      cur.value = (cur.ma + std::log(cur.sa)) - (cur.mb + std::log(cur.sb));
    }
    st[top++] = cur;
  }
  for (int64_t k = 0; k < top; ++k) {
    const KLBlock& blk = st[k];
    const int64_t end = k + 1 < top ? st[k + 1].start : m;
    // Singletons give back their inputs exactly (S = 1, log S = 0).
    const float va = static_cast<float>(blk.ma + std::log(blk.sa));
    const float vb = static_cast<float>(blk.mb + std::log(blk.sb));
    for (int64_t i = blk.start; i < end; ++i) {
      la[i] = va;
      lb[i] = vb;
      bid[i] = static_cast<int32_t>(k);
    }
  }
  for (int64_t i = m; i < n; ++i) {
    la[i] = a[i];
    lb[i] = b[i];
    bid[i] = static_cast<int32_t>(i);
  }
}

ffi::Error PavImpl(ffi::ThreadPool pool, ffi::AnyBuffer a, ffi::AnyBuffer b,
                   ffi::AnyBuffer length, ffi::Result<ffi::AnyBuffer> out_a,
                   ffi::Result<ffi::AnyBuffer> out_b, ffi::Result<ffi::AnyBuffer> out_id,
                   int64_t kl) {
  if (a.element_type() != ffi::DataType::F32 || b.element_type() != ffi::DataType::F32 ||
      length.element_type() != ffi::DataType::S32 ||
      out_a->element_type() != ffi::DataType::F32 ||
      out_b->element_type() != ffi::DataType::F32 || out_id->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument(
        "jaxrank native soft_pav: expects float32 a, b, int32 length; float32, float32, int32 "
        "outputs");
  const auto dims = a.dimensions();
  if (dims.size() < 1)
    return ffi::Error::InvalidArgument("jaxrank native soft_pav: a needs rank >= 1");
  const int64_t n = dims[dims.size() - 1];
  const int64_t total = static_cast<int64_t>(a.element_count());
  if (static_cast<int64_t>(b.element_count()) != total ||
      static_cast<int64_t>(out_a->element_count()) != total ||
      static_cast<int64_t>(out_b->element_count()) != total ||
      static_cast<int64_t>(out_id->element_count()) != total)
    return ffi::Error::InvalidArgument("jaxrank native soft_pav: operand sizes differ");
  if (n > std::numeric_limits<int32_t>::max())
    return ffi::Error::InvalidArgument("jaxrank native soft_pav: n exceeds int32");
  if (n == 0 || total == 0) return ffi::Error::Success();
  const int64_t rows = total / n;
  if (static_cast<int64_t>(length.element_count()) != rows)
    return ffi::Error::InvalidArgument(
        "jaxrank native soft_pav: length has " + std::to_string(length.element_count()) +
        " entries, expected one per row (" + std::to_string(rows) + ")");
  const float* pa = static_cast<const float*>(a.untyped_data());
  const float* pb = static_cast<const float*>(b.untyped_data());
  const int32_t* len = static_cast<const int32_t*>(length.untyped_data());
  float* oa = static_cast<float*>(out_a->untyped_data());
  float* ob = static_cast<float*>(out_b->untyped_data());
  int32_t* oi = static_cast<int32_t*>(out_id->untyped_data());
  for_rows(pool, rows, n, [&](int64_t r0, int64_t r1) {
    std::vector<L2Block> s2;
    std::vector<KLBlock> sk;
    if (kl)
      sk.resize(n);
    else
      s2.resize(n);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = std::clamp<int64_t>(len[r], 0, n);
      const int64_t off = r * n;
      if (kl)
        pav_kl_row(pa + off, pb + off, n, m, oa + off, ob + off, oi + off, sk);
      else
        pav_l2_row(pa + off, pb + off, n, m, oa + off, ob + off, oi + off, s2);
    }
  });
  return ffi::Error::Success();
}

}  // namespace

#define JAXRANK_EXPORT __attribute__((visibility("default")))
extern "C" {
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_soft_argsort(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_soft_pav(XLA_FFI_CallFrame*);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_soft_argsort, ArgsortImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // theta [..., n] f32
                                  .Arg<ffi::AnyBuffer>()   // valid [..., n] bool
                                  .Ret<ffi::AnyBuffer>());  // perm [..., n] s32

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_soft_pav, PavImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // a [..., n] f32
                                  .Arg<ffi::AnyBuffer>()   // b [..., n] f32
                                  .Arg<ffi::AnyBuffer>()   // length [...] s32
                                  .Ret<ffi::AnyBuffer>()   // block mean / lse of a
                                  .Ret<ffi::AnyBuffer>()   // block mean / lse of b
                                  .Ret<ffi::AnyBuffer>()   // block ids s32
                                  .Attr<int64_t>("kl"));
