//! Running a program: a fresh working directory, the compile step for Rust, the run itself, each
//! in its own sandbox under its own limits, and the verdict.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bubblewrap::{
    allocate_uid, bubblewrap, effective_uid, prepare_workdir, Bubblewrap, SandboxSpec, SANDBOX_DIR,
};
use crate::execution::{failure_reason, judge_run, Ended, Step};
use crate::memory_cap::MemoryCap;
use crate::process::{self, Launch, Outcome, ResourceLimits};
use crate::toolchain::{first_closed_directory, toolchain, Toolchain};
use crate::{Execution, Language, Limits, Program, SandboxError, SandboxKind};

/// Where the compiled Rust program goes, relative to the working directory.
const RUST_OUTPUT_DIR: &str = "out";

/// Runs `program` in the sandbox and reports how it went. Refuses with
/// [`SandboxError::NoSandbox`] when bubblewrap is missing (or [`SandboxError::SandboxUnusable`]
/// when it cannot work here), unless `limits.allow_unsandboxed` is set, in which case the code
/// runs with resource limits and the timeout only, as the result's `sandbox` says.
pub fn run(program: &Program, limits: &Limits) -> Result<Execution, SandboxError> {
    match bubblewrap() {
        Ok(bubblewrap) => Runner::new(Isolation::Bubblewrap(bubblewrap), limits).run(program),
        Err(SandboxError::NoSandbox | SandboxError::SandboxUnusable { .. })
            if limits.allow_unsandboxed =>
        {
            run_unsandboxed(program, limits)
        }
        Err(error) => Err(error),
    }
}

/// Runs `program` without isolation, whatever is installed: resource limits, the timeout and
/// (as root) an unprivileged uid of its own only. The code can read whatever that uid can read
/// and use the network. For machines that are themselves disposable sandboxes, and for tests.
pub fn run_unsandboxed(program: &Program, limits: &Limits) -> Result<Execution, SandboxError> {
    Runner::new(Isolation::Unsandboxed, limits).run(program)
}

/// Runs `tests` against a Markdown answer (see [`Program::from_answer`]). An answer without
/// usable code is a failed execution that says so, not an error.
pub fn run_answer(
    markdown: &str,
    language: Language,
    tests: &str,
    fallback_function: Option<&str>,
    limits: &Limits,
) -> Result<Execution, SandboxError> {
    match Program::from_answer(markdown, language, tests, fallback_function) {
        Ok(program) => run(&program, limits),
        Err(error) => {
            let sandbox = match bubblewrap() {
                Ok(bubblewrap) => bubblewrap.kind,
                Err(_) if limits.allow_unsandboxed => SandboxKind::Unsandboxed,
                Err(error) => return Err(error),
            };
            Ok(Execution::not_run(error.to_string(), sandbox))
        }
    }
}

#[derive(Clone, Copy)]
enum Isolation {
    Bubblewrap(&'static Bubblewrap),
    Unsandboxed,
}

impl Isolation {
    fn kind(self) -> SandboxKind {
        match self {
            Isolation::Bubblewrap(bubblewrap) => bubblewrap.kind,
            Isolation::Unsandboxed => SandboxKind::Unsandboxed,
        }
    }
}

struct Runner<'a> {
    isolation: Isolation,
    limits: &'a Limits,
    /// The uid the code runs as when we are root (see `bubblewrap::allocate_uid`).
    uid: u32,
    as_root: bool,
}

/// One step (compile or run) to perform.
struct StepSpec<'a> {
    step: Step,
    argv: Vec<OsString>,
    files: &'a [&'a str],
    directories: &'a [(&'a str, bool)],
    extra_env: &'a [(&'a str, &'a str)],
    /// Threads the runtime needs to start (RLIMIT_NPROC counts them), for the memory cap.
    threads_needed: u64,
}

impl<'a> Runner<'a> {
    fn new(isolation: Isolation, limits: &'a Limits) -> Runner<'a> {
        Runner {
            isolation,
            limits,
            uid: allocate_uid(),
            as_root: effective_uid() == Some(0),
        }
    }

    fn run(&self, program: &Program) -> Result<Execution, SandboxError> {
        let toolchain = toolchain(program.language)?;
        if matches!(self.isolation, Isolation::Unsandboxed) && self.as_root {
            // The code will run as an unprivileged uid; a toolchain under /root is out of its
            // reach, and saying so beats a bare "permission denied".
            if let Some(path) = first_closed_directory(&toolchain.program) {
                return Err(SandboxError::ToolchainUnreachable {
                    path,
                    uid: self.uid,
                });
            }
        }
        let workdir = tempfile::Builder::new()
            .prefix("versus-sandbox-")
            .tempdir()
            .map_err(SandboxError::io("create a temporary working directory"))?;
        let source_name = program.language.source_file_name();
        fs::write(workdir.path().join(source_name), &program.source).map_err(SandboxError::io(
            "write the program into its working directory",
        ))?;
        prepare_workdir(workdir.path(), self.isolation.kind(), self.uid).map_err(
            SandboxError::io("hand the working directory to the sandbox's uid"),
        )?;

        let started = Instant::now();
        let program_path = toolchain.program.clone().into_os_string();
        let files = [source_name];
        let (mut ended, compile_ms) = match program.language {
            Language::Python => {
                let argv = vec![program_path, "-I".into(), "-B".into(), source_name.into()];
                (
                    self.step(&toolchain, workdir.path(), StepSpec::run(argv, &files, 1))?,
                    None,
                )
            }
            Language::JavaScript => {
                let argv = vec![program_path, source_name.into()];
                // node starts about 11 threads (V8's platform workers, libuv), each counted
                // by RLIMIT_NPROC.
                (
                    self.step(&toolchain, workdir.path(), StepSpec::run(argv, &files, 16))?,
                    None,
                )
            }
            Language::Rust => {
                let output_dir = workdir.path().join(RUST_OUTPUT_DIR);
                fs::create_dir(&output_dir)
                    .map_err(SandboxError::io("create the compiler's output directory"))?;
                prepare_workdir(&output_dir, self.isolation.kind(), self.uid).map_err(
                    SandboxError::io("hand the output directory to the sandbox's uid"),
                )?;
                let binary = format!("{RUST_OUTPUT_DIR}/main");
                let compile = StepSpec {
                    step: Step::Compile,
                    argv: [
                        program_path,
                        "--edition".into(),
                        "2021".into(),
                        "-O".into(),
                        // Warnings in model-written code are noise; only errors matter.
                        "-A".into(),
                        "warnings".into(),
                        "--crate-name".into(),
                        "main".into(),
                        source_name.into(),
                        "-o".into(),
                        binary.clone().into(),
                    ]
                    .into(),
                    files: &files,
                    directories: &[(RUST_OUTPUT_DIR, true)],
                    extra_env: &[],
                    threads_needed: 1,
                };
                let compiled = self.step(&toolchain, workdir.path(), compile)?;
                let compile_ms = started.elapsed().as_millis() as u64;
                if compiled.exit_code != Some(0) || compiled.timed_out {
                    let reason =
                        failure_reason(&compiled, Language::Rust, Step::Compile, self.limits);
                    return Ok(self.execution(compiled, reason, None, started, Some(compile_ms)));
                }
                let run = StepSpec {
                    step: Step::Run,
                    argv: vec![format!("./{binary}").into()],
                    files: &[],
                    directories: &[(RUST_OUTPUT_DIR, false)],
                    extra_env: &[("RUST_BACKTRACE", "0")],
                    threads_needed: 1,
                };
                (
                    self.step(&toolchain, workdir.path(), run)?,
                    Some(compile_ms),
                )
            }
        };
        let (reason, tests_finished) = judge_run(
            &mut ended,
            program.language,
            self.limits,
            program.end_marker.as_deref(),
        );
        Ok(self.execution(ended, reason, tests_finished, started, compile_ms))
    }

    fn execution(
        &self,
        ended: Ended,
        reason: Option<String>,
        tests_finished: Option<bool>,
        started: Instant,
        compile_ms: Option<u64>,
    ) -> Execution {
        Execution {
            passed: reason.is_none(),
            exit_code: ended.exit_code,
            signal: ended.signal,
            truncated: ended.overflowed.is_some(),
            timed_out: ended.timed_out,
            stdout: ended.stdout,
            stderr: ended.stderr,
            wall_ms: started.elapsed().as_millis() as u64,
            compile_ms,
            reason,
            tests_finished,
            sandbox: self.isolation.kind(),
            memory_cap: ended.memory_cap,
        }
    }

    /// The resource limits and wall-clock limit of a step.
    fn step_limits(&self, step: Step) -> (ResourceLimits, Duration) {
        let limits = self.limits;
        match step {
            Step::Run => (
                ResourceLimits {
                    cpu_seconds: limits.cpu_seconds,
                    address_space_bytes: limits.memory_bytes,
                    file_size_bytes: limits.file_size_bytes,
                    open_files: limits.open_files,
                    processes: Some(limits.processes),
                    cgroup_procs: None,
                },
                limits.wall,
            ),
            // The compiler is trusted code working on untrusted input: it gets the room it needs
            // (LLVM threads, the linker, object files) but is still bounded.
            Step::Compile => (
                ResourceLimits {
                    cpu_seconds: limits.compile_wall.as_secs().max(1),
                    address_space_bytes: limits.compile_memory_bytes,
                    file_size_bytes: limits.file_size_bytes.max(64 * 1024 * 1024),
                    open_files: limits.open_files.max(256),
                    processes: Some(limits.processes.max(64)),
                    cgroup_procs: None,
                },
                limits.compile_wall,
            ),
        }
    }

    fn step(
        &self,
        toolchain: &Toolchain,
        workdir: &Path,
        spec: StepSpec<'_>,
    ) -> Result<Ended, SandboxError> {
        let (mut resources, wall) = self.step_limits(spec.step);
        // The run step's processes share one memory budget (the compiler is trusted and gets
        // its own limits).
        let memory_cap = (spec.step == Step::Run).then(|| {
            MemoryCap::choose(
                self.limits.total_memory_bytes,
                resources.address_space_bytes,
                resources.processes.unwrap_or(self.limits.processes),
                spec.threads_needed,
            )
        });
        let processes = resources.processes.unwrap_or(self.limits.processes);
        let processes = memory_cap
            .as_ref()
            .map_or(processes, |cap| cap.processes(processes));
        resources.cgroup_procs = memory_cap.as_ref().and_then(MemoryCap::cgroup_fd);
        let (home, tmp) = match self.isolation {
            Isolation::Bubblewrap(_) => (SANDBOX_DIR.to_string(), "/tmp".to_string()),
            Isolation::Unsandboxed => {
                let dir = workdir.display().to_string();
                (dir.clone(), dir)
            }
        };
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), home),
            ("TMPDIR".into(), tmp),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        env.extend(
            spec.extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );

        let outcome = match self.isolation {
            Isolation::Bubblewrap(bubblewrap) => {
                // RLIMIT_NPROC is set inside the sandbox by prlimit (see bubblewrap.rs).
                resources.processes = None;
                let sandbox = SandboxSpec {
                    toolchain_directories: &toolchain.directories,
                    host_workdir: workdir,
                    files: spec.files,
                    directories: spec.directories,
                    scratch_bytes: self.limits.scratch_bytes,
                    processes,
                    uid: self.uid,
                    env: &env,
                    argv: &spec.argv,
                };
                let outcome = bubblewrap
                    .launch(&sandbox, resources, wall, self.limits.output_bytes)
                    .map_err(SandboxError::io("start bwrap"))?;
                // bwrap reports the program's exit in its status; without that report, and
                // without us having killed it, bwrap itself failed before the program ran.
                let program_ran = outcome.status_report.contains("\"exit-code\"");
                if !program_ran && !outcome.killed_by_us() && !outcome.status.success() {
                    return Err(SandboxError::SandboxFailed {
                        stderr: String::from_utf8_lossy(&outcome.stderr).trim().to_string(),
                    });
                }
                outcome
            }
            Isolation::Unsandboxed => {
                resources.processes = Some(if self.as_root {
                    // The uid is the run's own, so the count is the run's alone.
                    processes
                } else {
                    // RLIMIT_NPROC counts every process of the user: allow `processes` more.
                    effective_uid().map_or(0, tasks_of_uid) + processes
                });
                let outcome = process::launch(Launch {
                    program: spec.argv[0].clone().into(),
                    args: spec.argv[1..].to_vec(),
                    current_dir: workdir.to_path_buf(),
                    env,
                    limits: resources,
                    run_as: self.as_root.then_some(self.uid),
                    status_socket: None,
                    wall,
                    output_bytes: self.limits.output_bytes,
                })
                .map_err(SandboxError::io(format!(
                    "start {}",
                    Path::new(&spec.argv[0]).display()
                )))?;
                if self.as_root {
                    // Processes that left the group (setsid) are still the run's uid's.
                    process::kill_all_processes_of(self.uid)
                        .map_err(SandboxError::io("kill what the program left running"))?;
                }
                outcome
            }
        };
        let mut ended = self.decode(outcome);
        ended.memory_cap = memory_cap.as_ref().map(MemoryCap::description);
        Ok(ended)
    }

    fn decode(&self, outcome: Outcome) -> Ended {
        let (exit_code, signal) = match (outcome.status.code(), outcome.direct_signal()) {
            (_, Some(signal)) => (None, Some(signal)),
            // bwrap reports a program killed by signal N as exit code 128 + N (as shells do).
            // A program that itself exits with 129..=192 reads the same; that is bwrap's
            // convention and the price of it.
            (Some(code), None)
                if matches!(self.isolation, Isolation::Bubblewrap(_))
                    && (129..=192).contains(&code) =>
            {
                (None, Some(code - 128))
            }
            (code, None) => (code, None),
        };
        Ended {
            exit_code,
            signal,
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            overflowed: outcome.overflowed,
            timed_out: outcome.timed_out,
            memory_cap: None,
        }
    }
}

impl<'a> StepSpec<'a> {
    fn run(argv: Vec<OsString>, files: &'a [&'a str], threads_needed: u64) -> StepSpec<'a> {
        StepSpec {
            step: Step::Run,
            argv,
            files,
            directories: &[],
            extra_env: &[],
            threads_needed,
        }
    }
}

/// How many processes and threads `uid` has (what `RLIMIT_NPROC` counts for it).
fn tasks_of_uid(uid: u32) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| fs::read_to_string(entry.path().join("status")).ok())
        .filter(|status| {
            let real_uid = status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|uid| uid.parse::<u32>().ok());
            real_uid == Some(uid)
        })
        .map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|threads| threads.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum()
}
