//! The sandbox's total memory cap. `RLIMIT_AS` caps each process, so a program that forks could
//! hold processes x address space; this caps the whole run.
//!
//! - **cgroup v2**, where one can be created: under this process's own cgroup when it is
//!   delegated to us (its `cgroup.controllers` has `memory` and `+memory` can be enabled for its
//!   children, as in the root of a container's cgroup namespace). The run gets a child cgroup
//!   with `memory.max` = the budget (and no swap), which the child process joins before it
//!   executes anything (writing `0` to `cgroup.procs`), so every process in the sandbox counts
//!   against one total. The cgroup is killed and removed after the run.
//! - **Otherwise a process limit**: `RLIMIT_NPROC` low enough that processes x address space
//!   stays within the budget. The kernel counts threads as processes there, so a runtime that
//!   needs more threads than that (node starts about 11) gets what it needs, and the result says
//!   the total is then above the budget.
//!
//! Which one applied is said in each execution's `memory_cap`.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::limits::human_bytes;

/// A cgroup of the run's own, removed when dropped.
#[derive(Debug)]
pub(crate) struct CgroupCap {
    dir: PathBuf,
    /// `cgroup.procs` of the run's cgroup, open for the child to write `0` to.
    procs: File,
}

impl CgroupCap {
    /// A fresh cgroup with `memory.max = bytes`, or `None` where none can be made.
    pub fn create(bytes: u64) -> Option<CgroupCap> {
        let parent = delegated_cgroup()?;
        let controllers = fs::read_to_string(parent.join("cgroup.controllers")).ok()?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return None;
        }
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
        if !enabled.split_whitespace().any(|c| c == "memory") {
            // Fails (EBUSY) when the parent holds processes and is not a root: not delegated.
            fs::write(parent.join("cgroup.subtree_control"), "+memory").ok()?;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = parent.join(format!(
            "versus-sandbox-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).ok()?;
        let made = (|| {
            fs::write(dir.join("memory.max"), bytes.to_string()).ok()?;
            // Best effort: without swap accounting the file is absent.
            let _ = fs::write(dir.join("memory.swap.max"), "0");
            let procs = OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .ok()?;
            Some(procs)
        })();
        match made {
            Some(procs) => Some(CgroupCap { dir, procs }),
            None => {
                let _ = fs::remove_dir(&dir);
                None
            }
        }
    }

    /// The descriptor the child writes `0` to, joining the cgroup.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }
}

impl Drop for CgroupCap {
    fn drop(&mut self) {
        // Whatever is left in it dies (cgroup.kill, Linux 5.14+); then the empty cgroup goes.
        let _ = fs::write(self.dir.join("cgroup.kill"), "1");
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// This process's cgroup v2 directory: `0::PATH` in /proc/self/cgroup under the cgroup2 mount.
fn delegated_cgroup() -> Option<PathBuf> {
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?
        .trim();
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount_point = mounts.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        (rest.split_whitespace().next()? == "cgroup2")
            .then(|| fields.split_whitespace().nth(4).map(str::to_string))?
    })?;
    Some(Path::new(&mount_point).join(path.trim_start_matches('/')))
}

/// How the run's total memory is capped.
#[derive(Debug)]
pub(crate) enum MemoryCap {
    Cgroup {
        cgroup: CgroupCap,
        bytes: u64,
    },
    ProcessLimit {
        processes: u64,
        per_process: u64,
        budget: u64,
    },
}

impl MemoryCap {
    /// The cap for a run of `budget` bytes in all, `per_process` bytes of address space each and
    /// at most `processes` processes, of which the runtime needs at least `needed` (threads).
    pub fn choose(budget: u64, per_process: u64, processes: u64, needed: u64) -> MemoryCap {
        if let Some(cgroup) = CgroupCap::create(budget) {
            return MemoryCap::Cgroup {
                cgroup,
                bytes: budget,
            };
        }
        MemoryCap::ProcessLimit {
            processes: process_limit(budget, per_process, processes, needed),
            per_process,
            budget,
        }
    }

    /// The process limit to set (`RLIMIT_NPROC`).
    pub fn processes(&self, processes: u64) -> u64 {
        match self {
            MemoryCap::Cgroup { .. } => processes,
            MemoryCap::ProcessLimit { processes, .. } => *processes,
        }
    }

    pub fn cgroup_fd(&self) -> Option<RawFd> {
        match self {
            MemoryCap::Cgroup { cgroup, .. } => Some(cgroup.procs_fd()),
            MemoryCap::ProcessLimit { .. } => None,
        }
    }

    /// What the check's result says about it.
    pub fn description(&self) -> String {
        match self {
            MemoryCap::Cgroup { bytes, .. } => format!(
                "cgroup v2 memory.max: {} for the whole sandbox",
                human_bytes(*bytes)
            ),
            MemoryCap::ProcessLimit {
                processes,
                per_process,
                budget,
            } => {
                let total = processes.saturating_mul(*per_process);
                let within = if total <= *budget {
                    format!("within the {} budget", human_bytes(*budget))
                } else {
                    format!(
                        "above the {} budget: the runtime needs {processes} threads",
                        human_bytes(*budget)
                    )
                };
                format!(
                    "no cgroup v2 available: at most {processes} processes x {} address space = {} ({within})",
                    human_bytes(*per_process),
                    human_bytes(total)
                )
            }
        }
    }
}

/// `budget / per_process` processes (at least one), no more than `processes`, but at least what
/// the runtime needs to start.
fn process_limit(budget: u64, per_process: u64, processes: u64, needed: u64) -> u64 {
    let fits = (budget / per_process.max(1)).max(1);
    fits.min(processes).max(needed.min(processes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn the_process_limit_keeps_processes_times_address_space_within_the_budget() {
        assert_eq!(process_limit(4 * GIB, GIB, 64, 1), 4);
        assert_eq!(process_limit(GIB / 2, GIB, 64, 1), 1);
        assert_eq!(process_limit(64 * GIB, GIB, 24, 1), 24);
        // A runtime that needs more threads gets them, and the description says so.
        assert_eq!(process_limit(4 * GIB, GIB, 64, 16), 16);
        let cap = MemoryCap::ProcessLimit {
            processes: 16,
            per_process: GIB,
            budget: 4 * GIB,
        };
        assert!(
            cap.description().contains("above the 4 GiB budget"),
            "{}",
            cap.description()
        );
        let cap = MemoryCap::ProcessLimit {
            processes: 4,
            per_process: GIB,
            budget: 4 * GIB,
        };
        assert_eq!(
            cap.description(),
            "no cgroup v2 available: at most 4 processes x 1 GiB address space = 4 GiB (within the 4 GiB budget)"
        );
    }
}
