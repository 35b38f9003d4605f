// The SIMD targets compiled into lowbit's Highway kernels. Include this BEFORE any hwy/ header in a kernel
// translation unit (and in tests that iterate targets), so every kernel file and its test agree on the set.
//
// With a default (x86-64 baseline) compile, Highway would build SSSE3, SSE4, AVX2, AVX3 and the portable
// fallback (EMU128, or SCALAR with GCC < 12.3, whose EMU128 Highway marks broken). We drop SSSE3/SSE4 (no
// machine we target lacks AVX2; the fallback remains) to halve compile time.
// Highway 1.0.3 has no AVX3_ZEN4 target; AVX3_DL is opt-in (HWY_WANT_AVX3_DL) and buys nothing for fp32
// kernels, so Zen4 runs the AVX3 (AVX-512 F/BW/DQ/VL) code. SVE is disabled because the kernels keep small
// arrays of vectors as register tiles, which sizeless SVE vector types do not allow; ARM uses NEON. On aarch64
// NEON is also the baseline (HWY_STATIC_TARGET), so it is the only target compiled there (no scalar fallback).
#pragma once

#if defined(HIGHWAY_HWY_DETECT_TARGETS_H_)
#error "include kernels/hwy_targets.h before any hwy/ header, or this file's target set will not apply"
#endif

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif
