// LOWBIT_KEEP_IN_REG(v): pins a just-loaded Highway vector to a register, so the compiler keeps the load a
// plain vector load instead of folding it into the instructions that use it, e.g.
//   - re-loading it as a memory operand of every FMA that reads it (the loads, not the FMAs, then bound the
//     loop on Zen 4: one 512-bit load per cycle);
//   - folding an f16 load into vcvtph2ps: Zen 4's prefetchers then did not follow the weight stream (one
//     thread decoding from DRAM: 11-15 GB/s, against 19-27 as a plain load, like bf16).
// Per SIMD target (no include guard): include it inside each target's pass of a foreach_target file.
#undef LOWBIT_KEEP_IN_REG
#if HWY_ARCH_X86 && (HWY_COMPILER_GCC || HWY_COMPILER_CLANG) && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
#define LOWBIT_KEEP_IN_REG(v) asm("" : "+v"((v).raw))
#else
#define LOWBIT_KEEP_IN_REG(v) (void)0
#endif
