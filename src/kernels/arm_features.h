// Which optional Arm instructions this CPU runs, asked of the kernel once (Linux: the AT_HWCAP / AT_HWCAP2
// bits). Every answer is false off aarch64, and where the OS does not say (non-Linux, except dotprod on Apple,
// which every Apple arm64 CPU has).
#pragma once

namespace lowbit {

bool arm_has_dotprod();  // sdot / udot (FEAT_DotProd)
bool arm_has_i8mm();     // smmla / usmmla (FEAT_I8MM)
bool arm_has_bf16();     // bfdot / bfmmla (FEAT_BF16)

}  // namespace lowbit
