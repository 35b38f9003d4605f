# Cross-compiling for aarch64 Linux on a Debian host with g++-aarch64-linux-gnu and the arm64 (multiarch) -dev
# packages (`dpkg --add-architecture arm64`; scripts/test-aarch64.sh installs them). Binaries run under
# qemu-aarch64 (also what CMake uses to list the tests: CMAKE_CROSSCOMPILING_EMULATOR).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries, headers and CMake/pkg-config files come from the host's multiarch tree (/usr/lib/aarch64-linux-gnu,
# /usr/include): search /usr, but never run or pick up host (x86-64) programs as if they were target ones.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see only the arm64 .pc files (plus the arch-independent ones).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# The binaries' loader (/lib/ld-linux-aarch64.so.1) and libraries are the multiarch arm64 ones (libc6:arm64 comes
# with the -dev packages), so qemu-aarch64 needs no -L. Do NOT pass -L /usr/aarch64-linux-gnu (or set
# QEMU_LD_PREFIX to it): the loader would then come from the cross toolchain's libc6-arm64-cross while libc.so.6
# is found in the multiarch tree, and a loader/libc version mismatch hangs in the first pthread_create.
if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(LOWBIT_QEMU_AARCH64 qemu-aarch64)
  if(LOWBIT_QEMU_AARCH64)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${LOWBIT_QEMU_AARCH64}")
  endif()
endif()
