//! Giving memory back to the system once a burst of work is over.
//!
//! A burst of reports (agents replaying a backlog after an outage, a whole house starting at
//! once) makes the allocator grow its heaps; freed, that memory stays in the process's free
//! lists, and glibc's allocator returns to the system only what is free at the very top of
//! its main heap. The engine shares a Pi with other services, so after a burst it trims:
//! SQLite's page caches of the idle connections (`Store::release_memory`), then the
//! allocator's free pages. musl's allocator (the static Pi builds) unmaps freed memory by
//! itself and has nothing to call.
//!
//! Trimming returns only whole free pages. What a burst leaves in the heaps is mostly pages
//! where a few lasting allocations (a sensor's row, a map's entry) sit between freed buffers,
//! so the engine also keeps large buffers out of the heaps altogether ([`configure`]).

/// Set the allocator up for a long-running engine; call once, before the work starts.
///
/// glibc starts its mmap threshold at 128 KiB and raises it to the size of any mapped block
/// that is freed (up to 32 MiB). One burst's big buffers (a batch's rows, a response, a
/// growing map) thus move every later buffer of up to that size into the heaps, where each
/// freed one leaves holes that lasting small allocations fill and pin. Setting the threshold
/// fixes it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "glibc's mallopt has no safe binding in std")]
pub(crate) fn configure() {
    unsafe extern "C" {
        /// glibc, `<malloc.h>`: `int mallopt(int param, int value)`.
        safe fn mallopt(param: i32, value: i32) -> i32;
    }
    /// `<malloc.h>`: `#define M_MMAP_THRESHOLD -3`.
    const M_MMAP_THRESHOLD: i32 = -3;
    /// Allocations of at least this many bytes get pages of their own (`mmap`), returned to
    /// the system when freed. Measured with `bench_ingest` (1,000 sensors / 50 hosts, a minute
    /// after the burst): the engine's own memory (RssAnon) 12.8-13.8 MB with glibc's sliding
    /// threshold, 10.6 with it fixed at its initial 128 KiB, 10.0 at 64 KiB, 9.8 at 32 KiB;
    /// ingest unchanged within the benchmark's noise.
    const MMAP_THRESHOLD: i32 = 64 * 1024;
    // Returns 0 only for an unknown parameter or a value above the 32 MiB maximum.
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 0 {
        tracing::warn!(
            "the allocator refused its mmap threshold; memory after a burst may stay higher"
        );
    }
}

/// See the other `configure`: musl's allocator maps large blocks by itself.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn configure() {}

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
