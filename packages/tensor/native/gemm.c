// BLIS (Debian's serial build, linked statically and kept private to this addon) with a kernel
// set chosen here rather than by the library's CPU detection: BLIS 0.9 does not recognise recent
// AMD cores (Zen 5 runs its generic C kernels, ~17 GMAC/s, against ~100 for its AVX-512 ones).
// Every product passes that context explicitly, so no environment variable of another BLAS
// (OPENBLAS_CORETYPE and the like) changes fedclr's speed.
#define _GNU_SOURCE
#include "gemm.h"
#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static cntx_t* context;
static const char* failure;
static char description[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;

// fedclr's pick where BLIS's detection would do worse (AVX-512 CPUs it does not know, AVX2 ones it
// leaves generic); otherwise the set BLIS detected.
static arch_t preferredArch(arch_t detected, const char** why) {
#if defined(__x86_64__) && defined(BLIS_CONFIG_SKX) && defined(BLIS_CONFIG_HASWELL)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    *why = "AVX-512, chosen by fedclr";
    return BLIS_ARCH_SKX;
  }
  if (detected == BLIS_ARCH_GENERIC && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *why = "AVX2 and FMA, chosen by fedclr";
    return BLIS_ARCH_HASWELL;
  }
#endif
  *why = "BLIS's detection";
  return detected;
}

// The kernel sets this BLIS build holds (its bli_config.h).
static const arch_t CONFIGURED[] = {
#ifdef BLIS_CONFIG_SKX
  BLIS_ARCH_SKX,
#endif
#ifdef BLIS_CONFIG_KNL
  BLIS_ARCH_KNL,
#endif
#ifdef BLIS_CONFIG_KNC
  BLIS_ARCH_KNC,
#endif
#ifdef BLIS_CONFIG_HASWELL
  BLIS_ARCH_HASWELL,
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
  BLIS_ARCH_SANDYBRIDGE,
#endif
#ifdef BLIS_CONFIG_PENRYN
  BLIS_ARCH_PENRYN,
#endif
#ifdef BLIS_CONFIG_ZEN3
  BLIS_ARCH_ZEN3,
#endif
#ifdef BLIS_CONFIG_ZEN2
  BLIS_ARCH_ZEN2,
#endif
#ifdef BLIS_CONFIG_ZEN
  BLIS_ARCH_ZEN,
#endif
#ifdef BLIS_CONFIG_EXCAVATOR
  BLIS_ARCH_EXCAVATOR,
#endif
#ifdef BLIS_CONFIG_STEAMROLLER
  BLIS_ARCH_STEAMROLLER,
#endif
#ifdef BLIS_CONFIG_PILEDRIVER
  BLIS_ARCH_PILEDRIVER,
#endif
#ifdef BLIS_CONFIG_BULLDOZER
  BLIS_ARCH_BULLDOZER,
#endif
#ifdef BLIS_CONFIG_ARMSVE
  BLIS_ARCH_ARMSVE,
#endif
#ifdef BLIS_CONFIG_A64FX
  BLIS_ARCH_A64FX,
#endif
#ifdef BLIS_CONFIG_FIRESTORM
  BLIS_ARCH_FIRESTORM,
#endif
#ifdef BLIS_CONFIG_THUNDERX2
  BLIS_ARCH_THUNDERX2,
#endif
#ifdef BLIS_CONFIG_CORTEXA57
  BLIS_ARCH_CORTEXA57,
#endif
#ifdef BLIS_CONFIG_CORTEXA53
  BLIS_ARCH_CORTEXA53,
#endif
#ifdef BLIS_CONFIG_CORTEXA15
  BLIS_ARCH_CORTEXA15,
#endif
#ifdef BLIS_CONFIG_CORTEXA9
  BLIS_ARCH_CORTEXA9,
#endif
#ifdef BLIS_CONFIG_POWER10
  BLIS_ARCH_POWER10,
#endif
#ifdef BLIS_CONFIG_POWER9
  BLIS_ARCH_POWER9,
#endif
#ifdef BLIS_CONFIG_POWER7
  BLIS_ARCH_POWER7,
#endif
#ifdef BLIS_CONFIG_BGQ
  BLIS_ARCH_BGQ,
#endif
#ifdef BLIS_CONFIG_GENERIC
  BLIS_ARCH_GENERIC,
#endif
};

// BLIS aborts the whole process on a BLIS_ARCH_TYPE outside those sets: refuse it first, with a message.
static int presetIsValid(const char* preset) {
  char* end = NULL;
  long id = strtol(preset, &end, 10);
  if (end == preset || *end != '\0') return 0;
  for (size_t i = 0; i < sizeof CONFIGURED / sizeof CONFIGURED[0]; i++) if ((long)CONFIGURED[i] == id) return 1;
  return 0;
}

static void choose(void) {
  const char* preset = getenv("BLIS_ARCH_TYPE");
  if (preset != NULL && !presetIsValid(preset)) {
    failure = "BLIS_ARCH_TYPE names no kernel set of this BLIS build (it takes a number: 0 skx, 3 haswell, 6 zen3, 25 generic); unset it to let fedclr choose";
    return;
  }
  bli_init();
  const char* why = "BLIS_ARCH_TYPE";
  arch_t arch = bli_arch_query_id(); // BLIS's detection, or BLIS_ARCH_TYPE
  if (preset == NULL) arch = preferredArch(arch, &why);
  cntx_t** contexts = bli_gks_lookup_id(arch);
  context = contexts == NULL ? NULL : contexts[BLIS_NAT];
  if (context == NULL) {
    failure = "BLIS has no context for the kernel set it chose; unset BLIS_ARCH_TYPE, or run with FEDCLR_NATIVE_GEMM=0";
    return;
  }
  snprintf(description, sizeof description, "BLIS %s %s kernels (%s)", bli_info_get_version_str(), bli_arch_string(arch), why);
}

const char* gemmInit(void) {
  pthread_once(&once, choose);
  return failure;
}

const char* gemmDescription(void) { return description; }

void sgemm(int transposeA, int transposeB, size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
           size_t ldb, float beta, float* c, size_t ldc) {
  float one = 1.0f;
  // A transpose is only a swap of the row and column strides: BLIS packs from either.
  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &one, (float*)a,
               transposeA ? 1 : (inc_t)lda, transposeA ? (inc_t)lda : 1, (float*)b, transposeB ? 1 : (inc_t)ldb,
               transposeB ? (inc_t)ldb : 1, &beta, c, (inc_t)ldc, 1, context, NULL);
}
