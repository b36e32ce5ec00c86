//! Isolation with bubblewrap (`bwrap`): how it is found and checked, and the command line that
//! builds the sandbox.
//!
//! Inside, the program sees: `/usr` (and the `/bin`, `/lib`... links or binds) read-only, the few
//! `/etc` entries compilers need (`/etc/alternatives` for `cc`, the loader cache), its toolchain's
//! own directories read-only at their real paths, a fresh `/proc` for its own pid namespace, a
//! minimal `/dev`, and two writable, size-capped in-memory file systems: the working directory
//! `/sandbox` (with the program's files bound read-only into it) and `/tmp`. The root is
//! read-only; there is no network (a new network namespace holds only a loopback device), no
//! other process to see or signal (pid namespace), no shared IPC or hostname, and the
//! environment is cleared.
//!
//! Two ways to start it, chosen by who we are:
//!
//! - **As root** ([`SandboxKind::BubblewrapAsRoot`]), bwrap runs privileged, without a user
//!   namespace: in one, root's code would still be uid 0 to the kernel, which exempts it from
//!   `RLIMIT_NPROC` (no fork-bomb defense) and makes it the owner of every root-owned file
//!   visible inside (the host's device nodes). Instead the namespaces are created directly, bwrap
//!   keeps only CAP_SETUID, CAP_SETGID and CAP_SETPCAP, and `setpriv` (util-linux) switches to a
//!   uid of the run's own, clears every capability (the bounding set too) and sets no-new-privs
//!   before the program starts. `RLIMIT_NPROC` then counts that uid's processes: this sandbox's
//!   alone. `--unshare-all` cannot be used here: it also tries a user namespace, which as root
//!   succeeds and maps only uid 0, so the switch to another uid would fail.
//! - **As another user** ([`SandboxKind::BubblewrapUserNamespace`]), bwrap needs a user
//!   namespace. There `RLIMIT_NPROC` is set inside the sandbox by `prlimit` (util-linux) rather
//!   than before bwrap starts: the kernel counts processes per user namespace, but a limit in
//!   force when the namespace is created also caps the user's processes outside it, which on a
//!   desktop already number hundreds.

use std::ffi::OsString;
use std::fs;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{self, Launch, ResourceLimits};
use crate::toolchain::{find_executable, is_system_path};
use crate::SandboxError;

/// The size of the sandbox's own /dev (device nodes and links only: nothing to write there).
const DEV_BYTES: &str = "65536";

/// Where the working directory is inside the sandbox (a name unlikely to shadow a host path).
pub(crate) const SANDBOX_DIR: &str = "/sandbox";

/// How code is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxKind {
    /// bubblewrap started by root: namespaces without a user namespace, and the code runs as an
    /// unprivileged uid of its own with no capabilities.
    BubblewrapAsRoot,
    /// bubblewrap started by an ordinary user, in a user namespace.
    BubblewrapUserNamespace,
    /// No isolation: resource limits and the timeout only ([`Limits::allow_unsandboxed`]).
    ///
    /// [`Limits::allow_unsandboxed`]: crate::Limits::allow_unsandboxed
    Unsandboxed,
}

impl SandboxKind {
    /// Whether the code is isolated from the filesystem and the network.
    pub fn is_isolated(self) -> bool {
        self != SandboxKind::Unsandboxed
    }

    /// A sentence for people.
    pub fn description(self) -> &'static str {
        match self {
            SandboxKind::BubblewrapAsRoot => {
                "bubblewrap (as root: no network, private filesystem, unprivileged uid)"
            }
            SandboxKind::BubblewrapUserNamespace => {
                "bubblewrap (user namespace: no network, private filesystem)"
            }
            SandboxKind::Unsandboxed => {
                "UNSANDBOXED: resource limits and a timeout only; the code can read your files and use the network"
            }
        }
    }
}

impl std::fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// Whether code can be isolated here, and how; checked once per process by starting a trivial
/// sandbox, so an error carries bwrap's own explanation.
pub fn sandbox_available() -> Result<SandboxKind, SandboxError> {
    bubblewrap().map(|bubblewrap| bubblewrap.kind)
}

/// A working bubblewrap and what it supports.
#[derive(Debug, Clone)]
pub(crate) struct Bubblewrap {
    pub bwrap: PathBuf,
    pub kind: SandboxKind,
    /// `setpriv`, used as root to become the run's uid.
    setpriv: Option<PathBuf>,
    prlimit: PathBuf,
    /// Whether `--size` and `--perms` are supported (bubblewrap 0.7+), for capped in-memory
    /// working directories. Older versions bind a host directory instead, where only the
    /// per-file size limit bounds what is written.
    sized_tmpfs: bool,
    /// Whether `--disable-userns` is supported (bubblewrap 0.8+): in a user namespace, it stops
    /// the code from creating namespaces of its own (less kernel surface to attack).
    disable_userns: bool,
}

#[derive(Debug, Clone)]
enum ProbeFailure {
    NotInstalled,
    Unusable {
        bwrap: PathBuf,
        stderr: String,
    },
    HelperMissing {
        tool: &'static str,
        package: &'static str,
    },
    Io {
        action: String,
        error: String,
    },
}

impl From<ProbeFailure> for SandboxError {
    fn from(failure: ProbeFailure) -> SandboxError {
        match failure {
            ProbeFailure::NotInstalled => SandboxError::NoSandbox,
            ProbeFailure::Unusable { bwrap, stderr } => {
                SandboxError::SandboxUnusable { bwrap, stderr }
            }
            ProbeFailure::HelperMissing { tool, package } => {
                SandboxError::HelperMissing { tool, package }
            }
            ProbeFailure::Io { action, error } => SandboxError::Io {
                action,
                source: std::io::Error::other(error),
            },
        }
    }
}

pub(crate) fn bubblewrap() -> Result<&'static Bubblewrap, SandboxError> {
    static PROBED: OnceLock<Result<Bubblewrap, ProbeFailure>> = OnceLock::new();
    PROBED
        .get_or_init(probe)
        .as_ref()
        .map_err(|failure| failure.clone().into())
}

fn probe() -> Result<Bubblewrap, ProbeFailure> {
    let bwrap = find_executable("bwrap").ok_or(ProbeFailure::NotInstalled)?;
    let as_root = effective_uid() == Some(0);
    let helper = |tool: &'static str| {
        find_executable(tool)
            .filter(|path| is_system_path(path))
            .ok_or(ProbeFailure::HelperMissing {
                tool,
                package: "util-linux",
            })
    };
    let help = bwrap_help(&bwrap);
    let bubblewrap = Bubblewrap {
        kind: if as_root {
            SandboxKind::BubblewrapAsRoot
        } else {
            SandboxKind::BubblewrapUserNamespace
        },
        setpriv: if as_root {
            Some(helper("setpriv")?)
        } else {
            None
        },
        prlimit: helper("prlimit")?,
        sized_tmpfs: help.contains("--size") && help.contains("--perms"),
        disable_userns: help.contains("--disable-userns"),
        bwrap,
    };

    // Start a trivial sandbox exactly as a run would, so any failure shows up now, with bwrap's
    // own message (typically "Creating new namespace failed: Operation not permitted").
    let io_failure = |action: &str| {
        let action = action.to_string();
        move |error: std::io::Error| ProbeFailure::Io {
            action,
            error: error.to_string(),
        }
    };
    let workdir = tempfile::Builder::new()
        .prefix("versus-sandbox-probe-")
        .tempdir()
        .map_err(io_failure("create a temporary directory"))?;
    let true_program = find_executable("true")
        .filter(|path| is_system_path(path))
        .ok_or(ProbeFailure::HelperMissing {
            tool: "true",
            package: "coreutils",
        })?;
    let uid = allocate_uid();
    prepare_workdir(workdir.path(), bubblewrap.kind, uid)
        .map_err(io_failure("prepare the probe directory"))?;
    let sandbox = SandboxSpec {
        toolchain_directories: &[],
        host_workdir: workdir.path(),
        files: &[],
        directories: &[],
        scratch_bytes: 1024 * 1024,
        processes: 16,
        uid,
        env: &[],
        argv: &[true_program.into_os_string()],
    };
    let outcome = bubblewrap
        .launch(&sandbox, probe_limits(), Duration::from_secs(10), 16 * 1024)
        .map_err(io_failure("start bwrap"))?;
    if !outcome.status.success() {
        let stderr = String::from_utf8_lossy(&outcome.stderr).trim().to_string();
        return Err(ProbeFailure::Unusable {
            bwrap: bubblewrap.bwrap,
            stderr: if stderr.is_empty() {
                format!("bwrap exited with {}", outcome.status)
            } else {
                stderr
            },
        });
    }
    Ok(bubblewrap)
}

fn probe_limits() -> ResourceLimits {
    ResourceLimits {
        cpu_seconds: 10,
        address_space_bytes: 1024 * 1024 * 1024,
        file_size_bytes: 1024 * 1024,
        open_files: 64,
        processes: None,
        cgroup_procs: None,
    }
}

/// bwrap's usage text, to see which options this version has.
fn bwrap_help(bwrap: &Path) -> String {
    Command::new(bwrap)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// Our effective uid, from `/proc/self/status` ("Uid: real effective saved fs").
pub(crate) fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A uid for one run, used when running as root: private to the run, so `RLIMIT_NPROC` counts
/// this run's processes only, and after the run every process of the uid can be killed. Taken
/// from a range far above real users (0x7000_0000 + 16 bits of our pid + 8 bits of a counter).
pub(crate) fn allocate_uid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let run = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
    0x7000_0000 + ((std::process::id() & 0xffff) << 8) + run
}

/// Makes the host working directory usable by the run's uid (as root, the directory is ours
/// and mode 0700, and the code runs as someone else).
pub(crate) fn prepare_workdir(dir: &Path, kind: SandboxKind, uid: u32) -> std::io::Result<()> {
    if kind == SandboxKind::BubblewrapAsRoot
        || (kind == SandboxKind::Unsandboxed && effective_uid() == Some(0))
    {
        std::os::unix::fs::chown(dir, Some(uid), Some(uid))?;
    }
    Ok(())
}

/// One sandbox to build.
pub(crate) struct SandboxSpec<'a> {
    /// Toolchain directories outside the system ones, bound read-only at their own paths.
    pub toolchain_directories: &'a [PathBuf],
    /// The host directory holding the run's files; every file and directory below is in it.
    pub host_workdir: &'a Path,
    /// Files bound read-only into the working directory, by name.
    pub files: &'a [&'a str],
    /// Directories bound into the working directory, by name, and whether writable.
    pub directories: &'a [(&'a str, bool)],
    pub scratch_bytes: u64,
    pub processes: u64,
    /// The uid the code runs as (as root).
    pub uid: u32,
    /// The program's whole environment.
    pub env: &'a [(String, String)],
    /// The command, with absolute paths or paths relative to the working directory.
    pub argv: &'a [OsString],
}

impl Bubblewrap {
    /// Starts the sandbox and watches it (see [`process::launch`]).
    pub(crate) fn launch(
        &self,
        sandbox: &SandboxSpec<'_>,
        limits: ResourceLimits,
        wall: Duration,
        output_bytes: usize,
    ) -> std::io::Result<process::Outcome> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let args = self.arguments(sandbox, std::os::fd::AsRawFd::as_raw_fd(&theirs));
        process::launch(Launch {
            program: self.bwrap.clone(),
            args,
            current_dir: PathBuf::from("/"),
            env: Vec::new(),
            limits,
            run_as: None,
            status_socket: Some((ours, theirs)),
            wall,
            output_bytes,
        })
    }

    fn arguments(&self, sandbox: &SandboxSpec<'_>, status_fd: RawFd) -> Vec<OsString> {
        let mut args = Arguments::default();
        args.push(["--die-with-parent", "--new-session"]);
        if self.kind != SandboxKind::BubblewrapAsRoot {
            args.push(["--unshare-user"]);
            if self.disable_userns {
                args.push(["--disable-userns"]);
            }
        }
        args.push([
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
        ]);

        // The system, read-only. On merged-/usr systems /bin, /lib... are links into /usr.
        args.push(["--ro-bind", "/usr", "/usr"]);
        for dir in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            let path = Path::new(dir);
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = fs::read_link(path) {
                        args.push_os(["--symlink".into(), target.into_os_string(), dir.into()]);
                    }
                }
                Ok(meta) if meta.is_dir() => args.push(["--ro-bind", dir, dir]),
                _ => {}
            }
        }
        self.directory(&mut args, Path::new("/etc"));
        args.push(["--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]);
        args.push(["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]);

        // The toolchain's own directories, and only those: the home directory they may live in
        // stays out of reach. bwrap would create the missing parents with root's mode (0700
        // for /root), which the run's uid could not cross, so they are made 0755 first.
        let mut created = Vec::new();
        for dir in sandbox.toolchain_directories {
            let mut parents: Vec<&Path> = dir.ancestors().skip(1).collect();
            parents.reverse();
            for parent in parents {
                if parent != Path::new("/") && !created.contains(&parent) {
                    self.directory(&mut args, parent);
                    created.push(parent);
                }
            }
            args.push_os(["--ro-bind".into(), dir.into(), dir.into()]);
        }
        args.push(["--proc", "/proc"]);
        if self.sized_tmpfs {
            // A minimal /dev on a capped tmpfs (bwrap's `--dev` is an uncapped tmpfs, and its
            // /dev/shm took 600 MiB in user-namespace mode): the usual device nodes bound from
            // the host, the standard links, and /dev/shm capped like the other scratch space.
            let shm_bytes = sandbox.scratch_bytes.to_string();
            args.push(["--size", DEV_BYTES, "--perms", "0755", "--tmpfs", "/dev"]);
            for device in ["null", "zero", "full", "random", "urandom", "tty"] {
                let path = format!("/dev/{device}");
                args.push(["--dev-bind-try", &path, &path]);
            }
            for (target, link) in [
                ("/proc/self/fd", "/dev/fd"),
                ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"),
                ("/proc/self/fd/2", "/dev/stderr"),
            ] {
                args.push(["--symlink", target, link]);
            }
            args.push([
                "--size", &shm_bytes, "--perms", "1777", "--tmpfs", "/dev/shm",
            ]);
        } else {
            args.push(["--dev", "/dev"]);
        }

        let sandbox_dir = Path::new(SANDBOX_DIR);
        if self.sized_tmpfs {
            let size = sandbox.scratch_bytes.to_string();
            for dir in ["/tmp", SANDBOX_DIR] {
                args.push(["--perms", "1777", "--size", &size, "--tmpfs", dir]);
            }
            for name in sandbox.files {
                let host = sandbox.host_workdir.join(name);
                args.push_os([
                    "--ro-bind".into(),
                    host.into(),
                    sandbox_dir.join(name).into(),
                ]);
            }
            for (name, writable) in sandbox.directories {
                let host = sandbox.host_workdir.join(name);
                let bind = if *writable { "--bind" } else { "--ro-bind" };
                args.push_os([bind.into(), host.into(), sandbox_dir.join(name).into()]);
            }
        } else {
            // Old bubblewrap: no size caps, so /tmp stays read-only and the host working
            // directory (which holds every file and directory of the run) is bound instead.
            args.push(["--tmpfs", "/tmp", "--remount-ro", "/tmp"]);
            args.push_os([
                "--bind".into(),
                sandbox.host_workdir.into(),
                SANDBOX_DIR.into(),
            ]);
        }
        // Everything else is read-only: writes can only go to the capped file systems.
        args.push(["--remount-ro", "/", "--chdir", SANDBOX_DIR]);

        args.push(["--clearenv"]);
        for (name, value) in sandbox.env {
            args.push(["--setenv", name, value]);
        }
        args.push(["--json-status-fd", &status_fd.to_string()]);

        if let (SandboxKind::BubblewrapAsRoot, Some(setpriv)) = (self.kind, &self.setpriv) {
            // Just what setpriv needs to become the run's uid and then drop everything.
            args.push(["--cap-drop", "ALL"]);
            for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
                args.push(["--cap-add", cap]);
            }
            let uid = sandbox.uid.to_string();
            args.push(["--"]);
            args.push_os([setpriv.into()]);
            args.push([
                "--reuid",
                &uid,
                "--regid",
                &uid,
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]);
        } else {
            args.push(["--"]);
        }
        let processes = sandbox.processes.to_string();
        args.push_os([self.prlimit.clone().into_os_string()]);
        args.push([format!("--nproc={processes}:{processes}").as_str(), "--"]);
        args.push_os(sandbox.argv.iter().cloned());
        args.0
    }

    /// An empty directory, mode 0755 where bwrap can set it.
    fn directory(&self, args: &mut Arguments, dir: &Path) {
        if self.sized_tmpfs {
            args.push(["--perms", "0755"]);
        }
        args.push_os(["--dir".into(), dir.into()]);
    }
}

#[derive(Default)]
struct Arguments(Vec<OsString>);

impl Arguments {
    fn push<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) {
        self.0.extend(args.into_iter().map(OsString::from));
    }

    fn push_os(&mut self, args: impl IntoIterator<Item = OsString>) {
        self.0.extend(args);
    }
}
