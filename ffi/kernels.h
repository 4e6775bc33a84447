// Kernel interface of the jaxrank native core (no XLA types here, so the
// sanitizer harness in test_kernels.cc links the kernels without jaxlib).
//
// One kernel table per ISA path; best_kernels() picks the best path the
// running CPU supports (runtime dispatch: AVX-512 (VNNI) -> AVX2 -> portable).
// Each ISA lives in its own translation unit whose code is compiled under
// `#pragma GCC target(...)` (function target attributes) and has internal
// linkage, so no ISA-specific instance of an inline function can leak into
// the portable code (the ODR hazard of per-file -m flags).
#pragma once

#include <cstdint>

namespace jaxrank {

// One MaxSim work item: nq query rows against the documents [n0, n1) of one
// document group. Element types depend on the kernel (f32, bf16 bits, int8).
struct MaxsimJob {
  int64_t nq = 0;   // number of query rows
  int64_t lq = 0;   // query tokens per row
  int64_t d = 0;    // embedding dimension
  int64_t ld = 0;   // padded document length (row stride in tokens)
  const void* const* q = nullptr;      // nq pointers to [lq, d]
  const float* const* qw = nullptr;    // nq pointers to [lq] token weights (0 = masked)
  const float* const* qs = nullptr;    // int8 only: nq pointers to [lq] query scales
  const void* docs = nullptr;          // [N, ld, d] of this document group
  const float* ds = nullptr;           // int8 only: [N, ld] document token scales
  const int32_t* lengths = nullptr;    // [N], already clamped to [0, ld]
  const uint8_t* mask = nullptr;       // [N, ld] (nonzero = valid) or nullptr
  int64_t n0 = 0, n1 = 0;              // document range
  float* const* out = nullptr;         // nq pointers to [N]
  int32_t* const* argmax = nullptr;    // nq pointers to [N, lq], or nullptr
};

struct Kernels {
  const char* name;
  // Score = sum_i qw_i * max_{j valid} <q_i, d_j>; -inf when no valid token
  // (and some qw_i != 0); argmax = first j attaining the max (0 when none).
  // (AVX-512: int8 screening + exact f32 rescoring from 32 query tokens per job;
  // same result up to the summation order of each dot; JAXRANK_F32_SCREEN=0|1.)
  void (*maxsim_f32)(const MaxsimJob&);
  void (*maxsim_bf16)(const MaxsimJob&);  // q, docs are bf16 bit patterns
  // int8 codes: score = sum_i qw_i * qs_i * max_j (ds_j * float(dot_i8(q_i, d_j)))
  void (*maxsim_i8)(const MaxsimJob&);
  // out[b * out_stride + n] = exact int32 dot(q_b, codes_n), n in [n0, n1)
  void (*dot_i8)(const int8_t* q, int64_t nq, int64_t d, const int8_t* codes, int64_t n0,
                 int64_t n1, int32_t* out, int64_t out_stride);
  // out[b * out_stride + n] = popcount(q_b xor codes_n) over nbytes bytes
  void (*hamming)(const uint8_t* q, int64_t nq, int64_t nbytes, const uint8_t* codes,
                  int64_t n0, int64_t n1, int32_t* out, int64_t out_stride);
};

const Kernels& generic_kernels();
const Kernels& avx2_kernels();
const Kernels& avx512_kernels();  // requires AVX512F/BW/VL/DQ + VNNI
bool cpu_has_avx512_path();
bool cpu_has_avx2_path();
bool cpu_has_vpopcntdq();
bool cpu_has_avx512_bf16();
bool cpu_has_amx();
// Best path for this CPU, honouring JAXRANK_ISA=generic|avx2|avx512 (lower only).
const Kernels& best_kernels();

}  // namespace jaxrank
