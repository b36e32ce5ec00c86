//! Starting one process under resource limits and watching it: a wall-clock deadline, stdout and
//! stderr read concurrently and capped, and a kill that takes the whole process group with it.
//!
//! The process is started in a session of its own (`setsid` in `pre_exec`), so its process group
//! is exactly what it and its children form, and `kill(-pgid, SIGKILL)` ends all of them without
//! touching ours. Under bubblewrap the direct child is bwrap itself; killing it ends the sandbox's
//! pid namespace, and with it every process inside, even those that left the group.
//!
//! This is the one module of the sandbox that needs `unsafe` (libc process calls); each block
//! carries its SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait, after the process has gone, for its output pipes to close: longer only if
/// something that escaped the kill still holds them, and then that output is given up on.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How long a process may take to die after SIGKILL before the run is reported as stuck.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// Resource limits set with `setrlimit` in the child before it executes anything.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResourceLimits {
    pub cpu_seconds: u64,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    /// `RLIMIT_NPROC`, when it is set here rather than inside the sandbox (see `bubblewrap.rs`).
    pub processes: Option<u64>,
    /// `cgroup.procs` of the run's own cgroup (see `memory_cap.rs`): the child writes `0` to it,
    /// joining the cgroup before it executes anything.
    pub cgroup_procs: Option<RawFd>,
}

/// One process to start.
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub current_dir: PathBuf,
    /// The whole environment: nothing of ours is inherited.
    pub env: Vec<(String, String)>,
    pub limits: ResourceLimits,
    /// Switch to this uid and gid (dropping supplementary groups) before executing; only used
    /// when running unsandboxed as root.
    pub run_as: Option<u32>,
    /// Our end and the child's end of a socket the child writes a status report to (bwrap's
    /// `--json-status-fd`); the child's end is the only descriptor it inherits besides stdio.
    pub status_socket: Option<(UnixStream, UnixStream)>,
    pub wall: Duration,
    pub output_bytes: usize,
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What happened to a launched process.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The stream that went past the cap, which got the process killed.
    pub overflowed: Option<Stream>,
    pub timed_out: bool,
    /// Everything written to the status socket.
    pub status_report: String,
}

impl Outcome {
    /// Whether the process was killed by us (timeout or output cap) rather than ending itself.
    pub fn killed_by_us(&self) -> bool {
        self.timed_out || self.overflowed.is_some()
    }

    /// The signal that ended the process, seen directly (not through bwrap's exit code).
    pub fn direct_signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

enum Event {
    Exited,
    Overflowed(Stream),
    ReaderFinished,
}

/// Starts the process and watches it until it has exited (or been killed) and its output is in.
pub(crate) fn launch(launch: Launch) -> io::Result<Outcome> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .current_dir(&launch.current_dir)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let inherited_fd = launch
        .status_socket
        .as_ref()
        .map(|(_, theirs)| theirs.as_raw_fd());
    prepare_child(&mut command, launch.limits, launch.run_as, inherited_fd);

    let started = Instant::now();
    let mut child = command.spawn()?;
    // Our copy of the child's end must go, or reading the status would never see end-of-file.
    let status_report = launch.status_socket.map(|(ours, theirs)| {
        drop(theirs);
        let (sender, report) = mpsc::channel();
        thread::spawn(move || sender.send(read_status(ours)));
        report
    });

    let (events, receiver) = mpsc::channel();
    let stdout = spawn_reader(
        child.stdout.take(),
        Stream::Stdout,
        launch.output_bytes,
        &events,
    );
    let stderr = spawn_reader(
        child.stderr.take(),
        Stream::Stderr,
        launch.output_bytes,
        &events,
    );
    let group = child.id() as libc::pid_t;
    let waiter = spawn_waiter(group, events);

    // On error the process would not die even of SIGKILL (stuck in the kernel): nothing more
    // can be done for it, and waiting for it would hang the caller too.
    let watched = watch(group, started + launch.wall, &receiver)?;
    let wait_result = waiter
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("waiter panicked")));
    if let Err(error) = wait_result {
        kill_group(group);
        return Err(error);
    }
    // The leader has exited but is not reaped yet, so its pid (the group id) cannot have been
    // reused: killing the group now is safe, and ends anything it left running in the group.
    kill_group(group);
    let status = child.wait()?;

    // Whatever still holds the pipes has been killed; wait briefly for the readers to drain.
    let mut pending_readers = 2 - watched.readers_finished;
    let grace_end = Instant::now() + PIPE_GRACE;
    while pending_readers > 0 {
        match receiver.recv_timeout(grace_end.saturating_duration_since(Instant::now())) {
            Ok(Event::ReaderFinished) => pending_readers -= 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let status_report = status_report
        .and_then(|report| report.recv_timeout(PIPE_GRACE).ok())
        .unwrap_or_default();
    Ok(Outcome {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
        overflowed: watched.overflowed,
        timed_out: watched.timed_out,
        status_report,
    })
}

struct Watched {
    overflowed: Option<Stream>,
    timed_out: bool,
    readers_finished: usize,
}

/// Waits for the exit, killing the group at the deadline or when an output stream overflows.
fn watch(group: libc::pid_t, deadline: Instant, events: &Receiver<Event>) -> io::Result<Watched> {
    let mut watched = Watched {
        overflowed: None,
        timed_out: false,
        readers_finished: 0,
    };
    let mut deadline = deadline;
    let mut killed = false;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Exited) => return Ok(watched),
            Ok(Event::ReaderFinished) => watched.readers_finished += 1,
            Ok(Event::Overflowed(stream)) => {
                if !killed {
                    watched.overflowed = Some(stream);
                    kill_group(group);
                    killed = true;
                    deadline = Instant::now() + KILL_GRACE;
                }
            }
            Err(RecvTimeoutError::Timeout) if !killed => {
                watched.timed_out = true;
                kill_group(group);
                killed = true;
                deadline = Instant::now() + KILL_GRACE;
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(io::Error::other(format!(
                    "the process did not die within {} s of SIGKILL",
                    KILL_GRACE.as_secs()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("lost track of the process"))
            }
        }
    }
}

/// A thread that waits for the child to exit without reaping it (`WNOWAIT`), so its pid stays
/// reserved until we have killed its group.
fn spawn_waiter(pid: libc::pid_t, events: Sender<Event>) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value for the kernel to overwrite.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid only writes into `info`, a zeroed siginfo_t we own; P_PID with our
            // own child's pid, and WNOWAIT leaves the child to be reaped by `Child::wait`.
            let result = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if result == 0 {
                break;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                let _ = events.send(Event::Exited);
                return Err(error);
            }
        }
        let _ = events.send(Event::Exited);
        Ok(())
    })
}

/// Kills every process in the group (the child was made a session and group leader).
fn kill_group(group: libc::pid_t) {
    // SAFETY: kill has no memory effects. The group id is our own child's pid, which is not
    // reaped yet whenever this is called, so it cannot name anyone else's group. A group that
    // is already gone gives ESRCH, which is fine.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

type Captured = Arc<Mutex<Vec<u8>>>;

/// Reads a stream into a buffer capped at `cap` bytes. Past the cap it reports the overflow and
/// stops reading (so memory stays bounded); the watcher then kills the process.
fn spawn_reader(
    stream: Option<impl Read + Send + 'static>,
    which: Stream,
    cap: usize,
    events: &Sender<Event>,
) -> Captured {
    let captured: Captured = Arc::default();
    let events = events.clone();
    let buffer = Arc::clone(&captured);
    thread::spawn(move || {
        if let Some(mut stream) = stream {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let read = match stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let mut buffer = buffer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let room = cap.saturating_sub(buffer.len());
                buffer.extend_from_slice(&chunk[..read.min(room)]);
                if read > room {
                    let _ = events.send(Event::Overflowed(which));
                    break;
                }
            }
        }
        let _ = events.send(Event::ReaderFinished);
    });
    captured
}

fn take(captured: &Captured) -> Vec<u8> {
    std::mem::take(
        &mut *captured
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

/// Reads the status socket to its end (bwrap closes it when the sandbox ends).
fn read_status(mut socket: UnixStream) -> String {
    let mut report = Vec::new();
    // A few JSON lines at most; the cap only guards against surprises.
    let _ = (&mut socket).take(64 * 1024).read_to_end(&mut report);
    String::from_utf8_lossy(&report).into_owned()
}

/// Installs the `pre_exec` hook: a new session, the resource limits, the inherited status
/// descriptor and, when asked, the switch to an unprivileged uid.
fn prepare_child(
    command: &mut Command,
    limits: ResourceLimits,
    run_as: Option<u32>,
    inherited_fd: Option<RawFd>,
) {
    let rlimits = [
        // Soft limit first: SIGXCPU at the soft CPU limit, SIGKILL one second later.
        (libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (
            libc::RLIMIT_AS,
            limits.address_space_bytes,
            limits.address_space_bytes,
        ),
        (
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (libc::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        // No core dumps: they would be written to the working directory, past the file limit.
        (libc::RLIMIT_CORE, 0, 0),
    ];
    let processes = limits.processes;
    let cgroup_procs = limits.cgroup_procs;
    let hook = move || -> io::Result<()> {
        // Only async-signal-safe calls from here on: this runs in the forked child, where
        // another thread of ours may have held the allocator's lock at the fork.

        // SAFETY: setsid has no memory effects; the child is not a group leader yet, so it
        // succeeds, making the child the leader of a new session and process group.
        if unsafe { libc::setsid() } == -1 {
            return Err(io::Error::last_os_error());
        }
        if let Some(fd) = cgroup_procs {
            // SAFETY: write reads one byte from a static; `fd` is the open `cgroup.procs` of
            // the run's cgroup, inherited across the fork. Writing "0" moves this process in.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        for (resource, soft, hard) in rlimits {
            set_limit(resource, soft, hard)?;
        }
        if let Some(processes) = processes {
            set_limit(libc::RLIMIT_NPROC, processes, processes)?;
        }
        if let Some(fd) = inherited_fd {
            // SAFETY: fcntl on a descriptor we own (the child's end of the status socket),
            // clearing close-on-exec so that exactly this one descriptor reaches bwrap.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(uid) = run_as {
            drop_privileges(uid)?;
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe system calls (setsid, write, setrlimit,
    // fcntl, setgroups, setgid, setuid, prctl) on values captured by copy; it allocates nothing.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn set_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the rlimit struct we pass by reference and nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Becomes `uid` (and gid `uid`, with no supplementary groups) for good: the code then has no
/// privileges, cannot read root's files, and its `RLIMIT_NPROC` is enforced (it never is for
/// root). No new privileges either: setuid binaries cannot take any back.
fn drop_privileges(uid: u32) -> io::Result<()> {
    // SAFETY: setgroups with a count of 0 reads no memory; setgid and setuid take plain ids.
    // Groups and gid go first: once the uid is dropped, changing them is no longer allowed.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) == -1
            || libc::setgid(uid as libc::gid_t) == -1
            || libc::setuid(uid as libc::uid_t) == -1
        {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with integer arguments only. The parent-death signal is set after the
        // uid change because changing credentials clears it.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Kills every process running as `uid` (used after an unsandboxed run as root, whose uid is
/// private to the run, to catch anything that escaped the process group with `setsid`).
pub(crate) fn kill_all_processes_of(uid: u32) -> io::Result<()> {
    let true_program = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("true");
    let mut command = Command::new(true_program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let hook = move || -> io::Result<()> {
        drop_privileges(uid)?;
        // SAFETY: kill has no memory effects. As `uid`, kill(-1) reaches exactly the processes
        // of that uid (except this one), and the uid belongs to this run alone.
        unsafe {
            libc::kill(-1, libc::SIGKILL);
        }
        Ok(())
    };
    // SAFETY: the hook makes only async-signal-safe system calls and allocates nothing.
    unsafe {
        command.pre_exec(hook);
    }
    command.spawn()?.wait().map(|_| ())
}
