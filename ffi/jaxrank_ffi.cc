// XLA FFI handlers of the jaxrank native core (CPU).
//
// Every handler accepts its operands with extra leading dimensions, as
// produced by `jax.ffi.ffi_call(..., vmap_method="expand_dims")`: each
// operand has the output's leading dimensions or 1 there (broadcast). When
// all document-side operands are broadcast over the leading dimensions (the
// usual `vmap` over queries), the batched queries are folded into one pass
// over the documents. Work is split over documents on XLA's intra-op thread
// pool.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels.h"
#include "xla/ffi/api/ffi.h"

#include "parallel.h"

namespace ffi = xla::ffi;
using jaxrank::MaxsimJob;

namespace {

using Dims = ffi::Span<const int64_t>;

int64_t prod(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

std::vector<int64_t> lead_of(Dims dims, size_t base_rank) {
  std::vector<int64_t> out;
  for (size_t i = 0; i + base_rank < dims.size(); ++i) out.push_back(dims[i]);
  return out;
}

std::vector<int64_t> tail_of(Dims dims, size_t base_rank) {
  std::vector<int64_t> out;
  for (size_t i = dims.size() - base_rank; i < dims.size(); ++i) out.push_back(dims[i]);
  return out;
}

// Element offsets of one operand for each output group (leading index tuple).
// Returns false (with a message) when the operand's leading dims do not
// broadcast against the output's.
bool group_offsets(const char* name, Dims dims, size_t base_rank,
                   const std::vector<int64_t>& out_lead, std::vector<int64_t>* offs,
                   bool* broadcast, std::string* err) {
  if (dims.size() != out_lead.size() + base_rank) {
    *err = std::string("jaxrank native: operand ") + name + " has rank " +
           std::to_string(dims.size()) + ", expected " +
           std::to_string(out_lead.size() + base_rank);
    return false;
  }
  const size_t k = out_lead.size();
  int64_t base = 1;
  for (size_t i = k; i < dims.size(); ++i) base *= dims[i];
  std::vector<int64_t> stride(k, 0);
  int64_t s = base;
  *broadcast = true;
  for (size_t i = k; i-- > 0;) {
    if (dims[i] != 1 && dims[i] != out_lead[i]) {
      *err = std::string("jaxrank native: operand ") + name + " leading dim " +
             std::to_string(dims[i]) + " does not broadcast to " + std::to_string(out_lead[i]);
      return false;
    }
    stride[i] = dims[i] == 1 ? 0 : s;
    if (dims[i] != 1 && out_lead[i] != 1) *broadcast = false;
    s *= dims[i];
  }
  const int64_t groups = prod(out_lead);
  offs->assign(groups, 0);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t rem = g, off = 0;
    for (size_t i = k; i-- > 0;) {
      const int64_t idx = rem % out_lead[i];
      rem /= out_lead[i];
      off += idx * stride[i];
    }
    (*offs)[g] = off;
  }
  return true;
}

using jaxrank::parallel_for;

int64_t doc_chunk(int64_t n, int64_t threads) {
  const int64_t t = std::max<int64_t>(1, threads);
  return std::clamp<int64_t>((n + 4 * t - 1) / (4 * t), 1, 256);
}

enum class Kind { kF32, kBF16, kI8 };

ffi::Error MaxsimCommon(Kind kind, ffi::ThreadPool& pool, ffi::AnyBuffer q, ffi::AnyBuffer qs,
                        ffi::AnyBuffer qw, ffi::AnyBuffer docs, ffi::AnyBuffer ds,
                        ffi::AnyBuffer lengths, ffi::AnyBuffer mask,
                        ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> argmax,
                        int64_t num_threads) {
  std::string err;
  const auto out_lead = lead_of(out->dimensions(), 2);
  const auto ot = tail_of(out->dimensions(), 2);
  const auto qt = tail_of(q.dimensions(), 3);
  const auto dt = tail_of(docs.dimensions(), 3);
  if (q.dimensions().size() < 3 || docs.dimensions().size() < 3)
    return ffi::Error::InvalidArgument("jaxrank native maxsim: q and docs need rank >= 3");
  const int64_t B = qt[0], lq = qt[1], d = qt[2], N = dt[0], ld = dt[1];
  if (dt[2] != d) return ffi::Error::InvalidArgument("jaxrank native maxsim: D mismatch");
  if (ot[0] != B || ot[1] != N)
    return ffi::Error::InvalidArgument("jaxrank native maxsim: output shape mismatch");
  if (lq > 4096) return ffi::Error::InvalidArgument("jaxrank native maxsim: Lq > 4096");
  if (kind == Kind::kI8 && d > 65793)
    return ffi::Error::InvalidArgument("jaxrank native maxsim_int8: D > 65793 overflows int32");
  const bool has_mask = mask.element_count() > 0;
  const bool has_argmax = argmax->element_count() > 0;
  std::vector<int64_t> o_q, o_qw, o_qs, o_docs, o_len, o_mask, o_ds, o_out, o_am;
  bool bq, bqw, bqs = true, bdocs, blen, bmask = true, bds = true, bout, bam = true;
  if (!group_offsets("q", q.dimensions(), 3, out_lead, &o_q, &bq, &err) ||
      !group_offsets("query_weights", qw.dimensions(), 2, out_lead, &o_qw, &bqw, &err) ||
      !group_offsets("docs", docs.dimensions(), 3, out_lead, &o_docs, &bdocs, &err) ||
      !group_offsets("doc_lengths", lengths.dimensions(), 1, out_lead, &o_len, &blen, &err) ||
      !group_offsets("out", out->dimensions(), 2, out_lead, &o_out, &bout, &err) ||
      (has_mask && !group_offsets("doc_mask", mask.dimensions(), 2, out_lead, &o_mask, &bmask,
                                  &err)) ||
      (has_argmax && !group_offsets("argmax", argmax->dimensions(), 3, out_lead, &o_am, &bam,
                                    &err)) ||
      (kind == Kind::kI8 &&
       (!group_offsets("query_scales", qs.dimensions(), 2, out_lead, &o_qs, &bqs, &err) ||
        !group_offsets("doc_scales", ds.dimensions(), 2, out_lead, &o_ds, &bds, &err))))
    return ffi::Error::InvalidArgument(err);

  const int64_t G = prod(out_lead);
  const size_t esize = kind == Kind::kF32 ? 4 : kind == Kind::kBF16 ? 2 : 1;
  const char* qbase = static_cast<const char*>(q.untyped_data());
  const char* dbase = static_cast<const char*>(docs.untyped_data());
  const float* qwbase = static_cast<const float*>(qw.untyped_data());
  const float* qsbase = kind == Kind::kI8 ? static_cast<const float*>(qs.untyped_data()) : nullptr;
  const float* dsbase = kind == Kind::kI8 ? static_cast<const float*>(ds.untyped_data()) : nullptr;
  const int32_t* lbase = static_cast<const int32_t*>(lengths.untyped_data());
  const uint8_t* mbase = has_mask ? static_cast<const uint8_t*>(mask.untyped_data()) : nullptr;
  float* obase = static_cast<float*>(out->untyped_data());
  int32_t* abase = has_argmax ? static_cast<int32_t*>(argmax->untyped_data()) : nullptr;

  // Validate lengths once per distinct document group (never crash on them).
  const bool shared_docs = bdocs && blen && bmask && bds;
  const int64_t n_doc_groups = shared_docs ? (G > 0 ? 1 : 0) : G;
  for (int64_t g = 0; g < n_doc_groups; ++g) {
    const int32_t* len = lbase + o_len[g];
    for (int64_t n = 0; n < N; ++n) {
      if (len[n] < 0 || len[n] > ld)
        return ffi::Error::InvalidArgument(
            "jaxrank native maxsim: doc_lengths[" + std::to_string(n) + "] = " +
            std::to_string(len[n]) + " outside [0, Ld=" + std::to_string(ld) + "]");
    }
  }
  if (G == 0 || B == 0 || N == 0) return ffi::Error::Success();

  // Query rows per document group: all G*B rows when documents are shared.
  const int64_t rows = shared_docs ? G * B : B;
  std::vector<std::vector<const void*>> qp(n_doc_groups);
  std::vector<std::vector<const float*>> qwp(n_doc_groups), qsp(n_doc_groups);
  std::vector<std::vector<float*>> op(n_doc_groups);
  std::vector<std::vector<int32_t*>> ap(n_doc_groups);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t dg = shared_docs ? 0 : g;
    for (int64_t b = 0; b < B; ++b) {
      qp[dg].push_back(qbase + (o_q[g] + b * lq * d) * esize);
      qwp[dg].push_back(qwbase + o_qw[g] + b * lq);
      if (kind == Kind::kI8) qsp[dg].push_back(qsbase + o_qs[g] + b * lq);
      op[dg].push_back(obase + o_out[g] + b * N);
      if (has_argmax) ap[dg].push_back(abase + o_am[g] + b * N * lq);
    }
  }
  const jaxrank::Kernels& kern = jaxrank::best_kernels();
  auto fn = kind == Kind::kF32 ? kern.maxsim_f32 : kind == Kind::kBF16 ? kern.maxsim_bf16
                                                                       : kern.maxsim_i8;
  int64_t threads = num_threads > 0 ? num_threads : std::max<int64_t>(1, pool.num_threads());
  const int64_t cs = doc_chunk(N, threads);
  const int64_t per_group = (N + cs - 1) / cs;
  parallel_for(pool, n_doc_groups * per_group, threads, [&](int64_t item) {
    const int64_t dg = item / per_group, c = item % per_group;
    MaxsimJob job;
    job.nq = rows;
    job.lq = lq;
    job.d = d;
    job.ld = ld;
    job.q = qp[dg].data();
    job.qw = qwp[dg].data();
    job.qs = kind == Kind::kI8 ? qsp[dg].data() : nullptr;
    job.docs = dbase + o_docs[dg] * esize;
    job.ds = kind == Kind::kI8 ? dsbase + o_ds[dg] : nullptr;
    job.lengths = lbase + o_len[dg];
    job.mask = has_mask ? mbase + o_mask[dg] : nullptr;
    job.n0 = c * cs;
    job.n1 = std::min(N, (c + 1) * cs);
    job.out = op[dg].data();
    job.argmax = has_argmax ? ap[dg].data() : nullptr;
    fn(job);
  });
  return ffi::Error::Success();
}

ffi::Error MaxsimImpl(ffi::ThreadPool pool, ffi::AnyBuffer q, ffi::AnyBuffer qw,
                      ffi::AnyBuffer docs, ffi::AnyBuffer lengths, ffi::AnyBuffer mask,
                      ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> argmax,
                      int64_t num_threads) {
  Kind kind;
  if (q.element_type() == ffi::DataType::F32 && docs.element_type() == ffi::DataType::F32)
    kind = Kind::kF32;
  else if (q.element_type() == ffi::DataType::BF16 && docs.element_type() == ffi::DataType::BF16)
    kind = Kind::kBF16;
  else
    return ffi::Error::InvalidArgument(
        "jaxrank native maxsim: q and docs must both be float32 or both bfloat16");
  if (qw.element_type() != ffi::DataType::F32 || lengths.element_type() != ffi::DataType::S32 ||
      mask.element_type() != ffi::DataType::U8 || out->element_type() != ffi::DataType::F32 ||
      argmax->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument("jaxrank native maxsim: wrong operand dtypes");
  return MaxsimCommon(kind, pool, q, qw, qw, docs, docs, lengths, mask, out, argmax, num_threads);
}

ffi::Error MaxsimI8Impl(ffi::ThreadPool pool, ffi::AnyBuffer q, ffi::AnyBuffer qs,
                        ffi::AnyBuffer qw, ffi::AnyBuffer docs, ffi::AnyBuffer ds,
                        ffi::AnyBuffer lengths, ffi::AnyBuffer mask,
                        ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> argmax,
                        int64_t num_threads) {
  if (q.element_type() != ffi::DataType::S8 || docs.element_type() != ffi::DataType::S8 ||
      qs.element_type() != ffi::DataType::F32 || ds.element_type() != ffi::DataType::F32 ||
      qw.element_type() != ffi::DataType::F32 || lengths.element_type() != ffi::DataType::S32 ||
      mask.element_type() != ffi::DataType::U8 || out->element_type() != ffi::DataType::F32 ||
      argmax->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument("jaxrank native maxsim_int8: wrong operand dtypes");
  return MaxsimCommon(Kind::kI8, pool, q, qs, qw, docs, ds, lengths, mask, out, argmax,
                      num_threads);
}

// Pairwise kernels over [.., B, K] x [.., N, K] -> [.., B, N] int32.
template <class T, class Fn>
ffi::Error PairwiseCommon(const char* what, ffi::ThreadPool& pool, ffi::AnyBuffer q,
                          ffi::AnyBuffer codes, ffi::Result<ffi::AnyBuffer> out,
                          int64_t num_threads, Fn fn) {
  std::string err;
  if (q.dimensions().size() < 2 || codes.dimensions().size() < 2)
    return ffi::Error::InvalidArgument(std::string("jaxrank native ") + what + ": rank < 2");
  const auto out_lead = lead_of(out->dimensions(), 2);
  const auto qt = tail_of(q.dimensions(), 2), ct = tail_of(codes.dimensions(), 2),
             ot = tail_of(out->dimensions(), 2);
  const int64_t B = qt[0], K = qt[1], N = ct[0];
  if (ct[1] != K || ot[0] != B || ot[1] != N)
    return ffi::Error::InvalidArgument(std::string("jaxrank native ") + what + ": shape mismatch");
  std::vector<int64_t> o_q, o_c, o_o;
  bool bq, bc, bo;
  if (!group_offsets("q", q.dimensions(), 2, out_lead, &o_q, &bq, &err) ||
      !group_offsets("codes", codes.dimensions(), 2, out_lead, &o_c, &bc, &err) ||
      !group_offsets("out", out->dimensions(), 2, out_lead, &o_o, &bo, &err))
    return ffi::Error::InvalidArgument(err);
  const int64_t G = prod(out_lead);
  if (G == 0 || B == 0 || N == 0) return ffi::Error::Success();
  const T* qb = static_cast<const T*>(q.untyped_data());
  const T* cb = static_cast<const T*>(codes.untyped_data());
  int32_t* ob = static_cast<int32_t*>(out->untyped_data());
  int64_t threads = num_threads > 0 ? num_threads : std::max<int64_t>(1, pool.num_threads());
  const int64_t cs = std::clamp<int64_t>((N + 8 * threads - 1) / (8 * threads), 64, 65536);
  const int64_t per_group = (N + cs - 1) / cs;
  parallel_for(pool, G * per_group, threads, [&](int64_t item) {
    const int64_t g = item / per_group, c = item % per_group;
    fn(qb + o_q[g], B, K, cb + o_c[g], c * cs, std::min(N, (c + 1) * cs), ob + o_o[g], N);
  });
  return ffi::Error::Success();
}

ffi::Error DotI8Impl(ffi::ThreadPool pool, ffi::AnyBuffer q, ffi::AnyBuffer codes,
                     ffi::Result<ffi::AnyBuffer> out, int64_t num_threads) {
  if (q.element_type() != ffi::DataType::S8 || codes.element_type() != ffi::DataType::S8 ||
      out->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument("jaxrank native int8_dot: wrong operand dtypes");
  const auto qt = tail_of(q.dimensions(), 1);
  if (!qt.empty() && qt[0] > 65793)
    return ffi::Error::InvalidArgument("jaxrank native int8_dot: D > 65793 overflows int32");
  return PairwiseCommon<int8_t>("int8_dot", pool, q, codes, out, num_threads,
                                jaxrank::best_kernels().dot_i8);
}

ffi::Error HammingImpl(ffi::ThreadPool pool, ffi::AnyBuffer q, ffi::AnyBuffer codes,
                       ffi::Result<ffi::AnyBuffer> out, int64_t num_threads) {
  if (q.element_type() != ffi::DataType::U8 || codes.element_type() != ffi::DataType::U8 ||
      out->element_type() != ffi::DataType::S32)
    return ffi::Error::InvalidArgument("jaxrank native hamming: wrong operand dtypes");
  return PairwiseCommon<uint8_t>("hamming", pool, q, codes, out, num_threads,
                                 jaxrank::best_kernels().hamming);
}

}  // namespace

// The library is built with hidden visibility; these are its only exports.
#define JAXRANK_EXPORT __attribute__((visibility("default")))
extern "C" {
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_maxsim(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_maxsim_int8(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_int8_dot(XLA_FFI_CallFrame*);
JAXRANK_EXPORT XLA_FFI_Error* jaxrank_hamming(XLA_FFI_CallFrame*);
JAXRANK_EXPORT int jaxrank_native_abi();
JAXRANK_EXPORT const char* jaxrank_native_isa();
JAXRANK_EXPORT int jaxrank_native_cpu_features();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_maxsim, MaxsimImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // q
                                  .Arg<ffi::AnyBuffer>()   // query weights
                                  .Arg<ffi::AnyBuffer>()   // docs
                                  .Arg<ffi::AnyBuffer>()   // doc lengths
                                  .Arg<ffi::AnyBuffer>()   // doc mask (u8, may be empty)
                                  .Ret<ffi::AnyBuffer>()   // scores
                                  .Ret<ffi::AnyBuffer>()   // argmax (may be empty)
                                  .Attr<int64_t>("num_threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_maxsim_int8, MaxsimI8Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // q codes
                                  .Arg<ffi::AnyBuffer>()   // q scales
                                  .Arg<ffi::AnyBuffer>()   // query weights
                                  .Arg<ffi::AnyBuffer>()   // doc codes
                                  .Arg<ffi::AnyBuffer>()   // doc scales
                                  .Arg<ffi::AnyBuffer>()   // doc lengths
                                  .Arg<ffi::AnyBuffer>()   // doc mask
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("num_threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_int8_dot, DotI8Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("num_threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxrank_hamming, HammingImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("num_threads"));

extern "C" {
// Bumped whenever a handler's operands change; the loader refuses a stale library.
int jaxrank_native_abi() { return 1; }
const char* jaxrank_native_isa() { return jaxrank::best_kernels().name; }
// Bit set: 1 avx2, 2 avx512 path, 4 vpopcntdq, 8 avx512_bf16, 16 amx (hardware only).
int jaxrank_native_cpu_features() {
  return (jaxrank::cpu_has_avx2_path() ? 1 : 0) | (jaxrank::cpu_has_avx512_path() ? 2 : 0) |
         (jaxrank::cpu_has_vpopcntdq() ? 4 : 0) | (jaxrank::cpu_has_avx512_bf16() ? 8 : 0) |
         (jaxrank::cpu_has_amx() ? 16 : 0);
}
}
