// Runtime ISA detection and the choice of kernel table.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace jaxrank {

#if defined(__x86_64__) && defined(__GNUC__)
// __builtin_cpu_supports checks CPUID and that the OS saves the register state
// (XGETBV) for AVX/AVX-512.
bool cpu_has_avx2_path() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("popcnt");
}
bool cpu_has_avx512_path() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && cpu_has_avx2_path();
}
bool cpu_has_vpopcntdq() { return __builtin_cpu_supports("avx512vpopcntdq"); }
bool cpu_has_avx512_bf16() { return __builtin_cpu_supports("avx512bf16"); }
bool cpu_has_amx() {
  // CPUID leaf 7, sub-leaf 0: EDX bit 24 = AMX-TILE, bit 25 = AMX-INT8.
  unsigned a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  return ((d >> 24) & 1u) && ((d >> 25) & 1u);
}
#else
bool cpu_has_avx2_path() { return false; }
bool cpu_has_avx512_path() { return false; }
bool cpu_has_vpopcntdq() { return false; }
bool cpu_has_avx512_bf16() { return false; }
bool cpu_has_amx() { return false; }
#endif

namespace {
const Kernels& choose() {
  const char* env = std::getenv("JAXRANK_ISA");
  int cap = 2;  // 0 portable, 1 avx2, 2 avx512
  if (env && std::strcmp(env, "generic") == 0) cap = 0;
  if (env && std::strcmp(env, "portable") == 0) cap = 0;
  if (env && std::strcmp(env, "avx2") == 0) cap = 1;
  if (cap >= 2 && cpu_has_avx512_path()) return avx512_kernels();
  if (cap >= 1 && cpu_has_avx2_path()) return avx2_kernels();
  return generic_kernels();
}
}  // namespace

const Kernels& best_kernels() {
  static const Kernels& k = choose();
  return k;
}

}  // namespace jaxrank
