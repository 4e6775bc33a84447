// AVX2 + FMA path: the portable loops compiled for AVX2 (target pragma).
#include <cstdint>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,popcnt,bmi2,f16c")
namespace {
#include "kernels_impl.h"
}  // namespace
#pragma GCC pop_options

namespace jaxrank {
const Kernels& avx2_kernels() {
  static const Kernels k{"avx2", gen_maxsim_f32, gen_maxsim_bf16, gen_maxsim_i8, gen_dot_i8,
                         gen_hamming};
  return k;
}
}  // namespace jaxrank
#else
namespace jaxrank {
const Kernels& avx2_kernels() { return generic_kernels(); }
}  // namespace jaxrank
#endif
