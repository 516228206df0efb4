//! Giving memory back to the system once a burst of work is over.
//!
//! A burst of reports (agents replaying a backlog after an outage, a whole house starting at
//! once) makes the allocator grow its heaps; freed, that memory stays in the process's free
//! lists, and glibc's allocator returns to the system only what is free at the very top of
//! its main heap. The engine shares a Pi with other services, so after a burst it trims:
//! SQLite's page caches of the idle connections (`Store::release_memory`), then the
//! allocator's free pages. musl's allocator (the static Pi builds) unmaps freed memory by
//! itself and has nothing to call.

/// Return the allocator's free pages to the system (every arena, not only the top of the
/// main heap). Takes about a millisecond for the engine's heaps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "glibc's malloc_trim has no safe binding in std")]
pub(crate) fn trim() {
    unsafe extern "C" {
        /// glibc, `<malloc.h>`: `int malloc_trim(size_t pad)`.
        safe fn malloc_trim(pad: usize) -> i32;
    }
    malloc_trim(0);
}

/// See the other `trim`: nothing to do on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim() {}
