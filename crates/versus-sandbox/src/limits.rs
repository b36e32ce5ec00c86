//! Resource limits for one run, with defaults measured on the interpreters they constrain.

use std::time::Duration;

/// Limits for one [`run`](crate::run).
///
/// Memory is limited with `RLIMIT_AS` (address space), which makes an allocation fail cleanly
/// (`MemoryError`, `std::bad_alloc`, "memory allocation failed") instead of inviting the OOM
/// killer. Measured with node 20, CPython 3.11 and rustc 1.95: node needs more than 512 MiB of
/// address space just to start (V8 reserves its heap cage up front), CPython and the compiled
/// Rust programs need a few MiB, and `rustc -O` needs 512 MiB for a small program, more for
/// larger ones (LLVM's threads reserve stacks). Hence 1 GiB to run, 2 GiB to compile.
/// `RLIMIT_DATA` would be kinder to reservations, but under it V8 dies with SIGSEGV rather than
/// a message, so `RLIMIT_AS` it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time before the whole sandbox is killed (default 10 s).
    pub wall: Duration,
    /// CPU seconds per process (`RLIMIT_CPU`; SIGXCPU, then SIGKILL a second later; default 10).
    pub cpu_seconds: u64,
    /// Address space per process (`RLIMIT_AS`; default 1 GiB).
    pub memory_bytes: u64,
    /// Memory of the whole run, every process together (default 4 GiB): a cgroup v2
    /// `memory.max` where one can be created, otherwise a process limit of
    /// `total_memory_bytes / memory_bytes` (see `memory_cap.rs`). Each execution says which.
    pub total_memory_bytes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`; SIGXFSZ past it; default 16 MiB).
    pub file_size_bytes: u64,
    /// Processes and threads the program may have at once (`RLIMIT_NPROC`, counted for a user
    /// of its own, see the crate documentation; default 64: node runs about 11 threads, rustc
    /// with the linker about 17).
    pub processes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`; default 256).
    pub open_files: u64,
    /// Bytes kept of stdout and of stderr each; a program that writes more is killed, and the
    /// execution is marked truncated (default 64 KiB).
    pub output_bytes: usize,
    /// Size of each writable in-memory file system in the sandbox, the working directory and
    /// `/tmp` (default 256 MiB), so writing cannot fill the disk or the memory. Needs bubblewrap
    /// 0.7 or later; with older versions (and unsandboxed) only `file_size_bytes` applies.
    pub scratch_bytes: u64,
    /// Wall-clock limit for compiling (Rust), which also sets its CPU limit (default 30 s).
    pub compile_wall: Duration,
    /// Address space for the compiler (default 2 GiB); its file-size limit is at least 64 MiB.
    pub compile_memory_bytes: u64,
    /// Without bubblewrap, run anyway with resource limits and the timeout only (no filesystem
    /// or network isolation). Off by default: [`run`](crate::run) refuses instead.
    pub allow_unsandboxed: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: GIB,
            total_memory_bytes: 4 * GIB,
            file_size_bytes: 16 * MIB,
            processes: 64,
            open_files: 256,
            output_bytes: 64 * 1024,
            scratch_bytes: 256 * MIB,
            compile_wall: Duration::from_secs(30),
            compile_memory_bytes: 2 * GIB,
            allow_unsandboxed: false,
        }
    }
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// A byte count for people: `64 KiB`, `1 GiB`, `1.5 GiB`, `100 bytes`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(GIB, "GiB"), (MIB, "MiB"), (1024, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// A duration for people: `10 s`, `2.5 s`, `300 ms`.
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 * 1024), "64 KiB");
        assert_eq!(human_bytes(GIB), "1 GiB");
        assert_eq!(human_bytes(3 * GIB / 2), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 bytes");
        assert_eq!(human_duration(Duration::from_secs(10)), "10 s");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(human_duration(Duration::from_millis(300)), "300 ms");
    }
}
