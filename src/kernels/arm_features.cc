#include "kernels/arm_features.h"

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace lowbit {

namespace {

#if defined(__aarch64__) && defined(__linux__)
bool hwcap_bit(unsigned long type, unsigned long bit) { return (getauxval(type) & bit) != 0; }
#endif

}  // namespace

bool arm_has_dotprod() {
#if defined(__aarch64__) && defined(__APPLE__)
  return true;
#elif defined(__aarch64__) && defined(__linux__) && defined(HWCAP_ASIMDDP)
  static const bool has = hwcap_bit(AT_HWCAP, HWCAP_ASIMDDP);
  return has;
#else
  return false;
#endif
}

bool arm_has_i8mm() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP2_I8MM)
  static const bool has = hwcap_bit(AT_HWCAP2, HWCAP2_I8MM);
  return has;
#else
  return false;  // (Apple M2 and later have it too; not detected yet)
#endif
}

bool arm_has_bf16() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP2_BF16)
  static const bool has = hwcap_bit(AT_HWCAP2, HWCAP2_BF16);
  return has;
#else
  return false;  // (Apple M2 and later have it too; not detected yet)
#endif
}

}  // namespace lowbit
