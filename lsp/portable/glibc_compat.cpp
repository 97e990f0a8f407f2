// Linked into the `hearth` binary of portable builds only (HEARTH_PORTABLE): keeps the
// glibc version the binary needs as low as the build machine allows.
//
// GCC 12's static libstdc++, built against glibc 2.36, calls arc4random (new in glibc 2.36)
// from std::random_device, and every link pulls that object file in (the copy-on-write
// string instantiations refer to it). hearth never makes a random_device, yet the versioned
// reference alone (arc4random@GLIBC_2.36) stops the binary from starting on glibc 2.35
// (Ubuntu 22.04). This definition is an object file of the link, ahead of libstdc++.a, so
// that reference binds here instead of to libc.so.6. Hidden: it stays out of the dynamic
// symbol table, so libraries loaded later (Vulkan drivers) still get glibc's.
#include <sys/random.h>

#include <cerrno>
#include <cstdint>

// noexcept: glibc 2.36's <stdlib.h> declares it __THROW.
extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) noexcept {
    uint32_t value = 0;
    ssize_t n = 0;
    // getrandom (glibc 2.25) is what glibc's own arc4random draws from. Nothing in hearth
    // calls this; were getrandom to fail for good (a kernel before 3.17), it returns 0.
    do {
        n = getrandom(&value, sizeof value, 0);
    } while (n < 0 && errno == EINTR);
    return value;
}
