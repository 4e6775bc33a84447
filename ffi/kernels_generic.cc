// Portable path: the baseline ISA of the build (SSE2 on x86-64), no target pragma.
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace {
#include "kernels_impl.h"
}  // namespace

namespace jaxrank {
const Kernels& generic_kernels() {
  static const Kernels k{"portable", gen_maxsim_f32, gen_maxsim_bf16, gen_maxsim_i8, gen_dot_i8,
                         gen_hamming};
  return k;
}
}  // namespace jaxrank
