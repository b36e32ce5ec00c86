//! The result of running a program, and the one-line human explanation of a failure, read from
//! the exit status, the end-of-tests marker of a program with tests (see `harness.rs`), the
//! harness's own report, and the interpreter's last words (a Python traceback's final line, a
//! Node error line, a Rust panic message, rustc's first error).

use serde::{Deserialize, Serialize};

use crate::harness::{take_end_marker, take_harness_reason, MarkerSeen, HARNESS_EXIT_CODE};
use crate::limits::{human_bytes, human_duration};
use crate::process::Stream;
use crate::{Language, Limits, SandboxKind};

/// How a program run went. `passed` is the verdict; `reason` says why not.
///
/// A program with tests ([`Program::with_tests`](crate::Program::with_tests), which
/// [`run_answer`](crate::run_answer) builds) passes only if it exits with 0 *and* the harness's
/// end-of-tests marker is the last line of its stdout: an answer that exits before or during the
/// tests fails, with a reason that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The exit code, when the program exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended the program (SIGKILL for a timeout or the output cap, SIGXCPU for
    /// the CPU limit, ...).
    pub signal: Option<i32>,
    /// Standard output, at most [`Limits::output_bytes`] of it (without the end-of-tests marker
    /// line, when the harness printed it).
    pub stdout: String,
    /// Standard error, at most [`Limits::output_bytes`] of it.
    pub stderr: String,
    /// Whether stdout or stderr went past the cap (the program was then killed).
    pub truncated: bool,
    /// Whether the program was killed at the wall-clock limit.
    pub timed_out: bool,
    /// Wall-clock time of the whole run, compilation included, in milliseconds.
    pub wall_ms: u64,
    /// Wall-clock time of the compilation (Rust), in milliseconds.
    pub compile_ms: Option<u64>,
    /// Exit status 0, in time, and for a program with tests, the end-of-tests marker as the last
    /// line of stdout.
    pub passed: bool,
    /// Why it did not pass: "killed after 10 s wall-clock timeout", "exceeded the 1 GiB memory
    /// limit (MemoryError)", "exit code 1: AssertionError: ...", "compile error: ...", "the
    /// answer exited before the tests ran (SystemExit(0))", "the tests did not finish: the
    /// process exited with 0 before the end-of-tests marker".
    pub reason: Option<String>,
    /// For a program with tests, whether they ran to the end: the harness printed its
    /// end-of-tests marker as the last line of stdout. `None` for a program without tests
    /// ([`Program::new`](crate::Program::new)) and one that never ran (or did not compile).
    #[serde(default)]
    pub tests_finished: Option<bool>,
    /// How the program was isolated.
    pub sandbox: SandboxKind,
    /// How the run's total memory was capped: "cgroup v2 memory.max: 4 GiB for the whole
    /// sandbox", or the process limit that stood in for it (see `memory_cap.rs`).
    #[serde(default)]
    pub memory_cap: Option<String>,
}

impl Execution {
    /// A program that was never run (no code in the answer, say), failed with `reason`.
    pub fn not_run(reason: impl Into<String>, sandbox: SandboxKind) -> Execution {
        Execution {
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            timed_out: false,
            wall_ms: 0,
            compile_ms: None,
            passed: false,
            reason: Some(reason.into()),
            tests_finished: None,
            sandbox,
            memory_cap: None,
        }
    }
}

/// What the process layer saw, decoded into exit code or signal.
pub(crate) struct Ended {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub overflowed: Option<Stream>,
    pub timed_out: bool,
    /// How the step's total memory was capped.
    pub memory_cap: Option<String>,
}

/// Which step is being explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Compile,
    Run,
}

/// Why the run step of a program failed, or `None` if it passed, and for a program with tests
/// (`end_marker`), whether they finished. The marker line is taken out of stdout, and the
/// harness's own failure report, which becomes the reason, out of stderr.
pub(crate) fn judge_run(
    ended: &mut Ended,
    language: Language,
    limits: &Limits,
    end_marker: Option<&str>,
) -> (Option<String>, Option<bool>) {
    let Some(marker) = end_marker else {
        return (failure_reason(ended, language, Step::Run, limits), None);
    };
    let seen = take_end_marker(&mut ended.stdout, marker);
    let finished = Some(seen == MarkerSeen::Last);
    let stopped_by_harness = ended.exit_code == Some(HARNESS_EXIT_CODE)
        && !ended.timed_out
        && ended.overflowed.is_none();
    if stopped_by_harness {
        if let Some(reason) = take_harness_reason(&mut ended.stderr) {
            return (Some(shorten(&reason)), finished);
        }
    }
    if let Some(reason) = failure_reason(ended, language, Step::Run, limits) {
        return (Some(reason), finished);
    }
    (seen.failure().map(str::to_string), finished)
}

/// Why a step failed, or `None` if it exited with 0 in time.
pub(crate) fn failure_reason(
    ended: &Ended,
    language: Language,
    step: Step,
    limits: &Limits,
) -> Option<String> {
    let (wall, memory) = match step {
        Step::Compile => (limits.compile_wall, limits.compile_memory_bytes),
        Step::Run => (limits.wall, limits.memory_bytes),
    };
    let prefix = match step {
        Step::Compile => "compile step ",
        Step::Run => "",
    };
    if ended.timed_out {
        return Some(format!(
            "{prefix}killed after {} wall-clock timeout",
            human_duration(wall)
        ));
    }
    if let Some(stream) = ended.overflowed {
        return Some(format!(
            "{prefix}killed: {} went past the {} output limit",
            stream.name(),
            human_bytes(limits.output_bytes as u64)
        ));
    }
    if ended.exit_code == Some(0) {
        return None;
    }
    let summary = match step {
        Step::Compile => compile_error_summary(&ended.stderr),
        Step::Run => error_summary(&ended.stderr, language),
    };
    if is_out_of_memory(&ended.stderr) {
        let detail = summary.map(|s| format!(" ({s})")).unwrap_or_default();
        return Some(format!(
            "{prefix}exceeded the {} memory limit{detail}",
            human_bytes(memory)
        ));
    }
    if step == Step::Compile {
        if let Some(signal) = ended.signal {
            return Some(format!("compiler {}", signal_reason(signal, limits)));
        }
        return Some(format!(
            "compile error: {}",
            summary.unwrap_or_else(|| "rustc failed without a message".into())
        ));
    }
    if let Some(signal) = ended.signal {
        return Some(signal_reason(signal, limits));
    }
    let code = ended.exit_code.unwrap_or(-1);
    Some(match summary {
        Some(summary) => format!("exit code {code}: {summary}"),
        None => format!("exit code {code}"),
    })
}

fn signal_reason(signal: i32, limits: &Limits) -> String {
    match signal {
        libc::SIGXCPU => format!("exceeded the {} s CPU-time limit", limits.cpu_seconds),
        libc::SIGXFSZ => format!(
            "exceeded the {} file-size limit",
            human_bytes(limits.file_size_bytes)
        ),
        libc::SIGKILL => "killed by SIGKILL (the CPU-time hard limit, or out of memory)".into(),
        libc::SIGSEGV => "crashed with SIGSEGV (a stack overflow, or out of memory)".into(),
        libc::SIGABRT => "aborted (SIGABRT)".into(),
        other => format!("killed by signal {other}"),
    }
}

fn is_out_of_memory(stderr: &str) -> bool {
    [
        "MemoryError",
        "out of memory",
        "Out of memory",
        "bad_alloc",
        "memory allocation of",
        "Cannot allocate memory",
        "Allocation failed",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
}

/// Longest summary quoted in a reason.
const SUMMARY_CHARS: usize = 300;

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= SUMMARY_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    format!("{cut}…")
}

/// The line that says what went wrong at run time.
fn error_summary(stderr: &str, language: Language) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let summary = match language {
        // A traceback ends with the exception: `AssertionError: fib(5) returned 3`.
        Language::Python => lines.last().map(|line| line.to_string()),
        // Node prints the throw site, then `AssertionError [ERR_ASSERTION]: ...`, a stack and
        // its version; the error line is the first that names an error.
        Language::JavaScript => lines
            .iter()
            .find(|line| {
                let first_word = line.split([' ', ':']).next().unwrap_or("");
                first_word.ends_with("Error") || line.starts_with("Uncaught")
            })
            .or_else(|| {
                lines
                    .iter()
                    .rev()
                    .find(|line| !line.starts_with("Node.js v"))
            })
            .map(|line| line.to_string()),
        // `thread 'main' panicked at main.rs:9:5:` then the message lines, then a note.
        Language::Rust => match lines.iter().position(|line| line.contains("panicked at")) {
            Some(start) => Some(
                lines[start..]
                    .iter()
                    .take_while(|line| !line.starts_with("note:"))
                    .map(|line| line.trim())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => lines.last().map(|line| line.to_string()),
        },
    };
    summary.map(|summary| shorten(&summary))
}

/// rustc's first error and where it is: `error[E0308]: mismatched types (main.rs:3:5)`.
fn compile_error_summary(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().skip_while(|line| !line.starts_with("error"));
    let error = lines.next()?.trim();
    let location = lines
        .take(3)
        .find_map(|line| line.trim_start().strip_prefix("--> "))
        .map(|location| format!(" ({})", location.trim()))
        .unwrap_or_default();
    Some(shorten(&format!("{error}{location}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(exit_code: Option<i32>, signal: Option<i32>, stderr: &str) -> Ended {
        Ended {
            exit_code,
            signal,
            stdout: String::new(),
            stderr: stderr.to_string(),
            overflowed: None,
            timed_out: false,
            memory_cap: None,
        }
    }

    fn reason(ended: &Ended, language: Language, step: Step) -> Option<String> {
        failure_reason(ended, language, step, &Limits::default())
    }

    #[test]
    fn python_assertion_is_the_last_traceback_line() {
        let stderr = "Traceback (most recent call last):\n  File \"main.py\", line 20\nAssertionError: fib(5) = 3, expected 5\n";
        assert_eq!(
            reason(&ended(Some(1), None, stderr), Language::Python, Step::Run).unwrap(),
            "exit code 1: AssertionError: fib(5) = 3, expected 5"
        );
    }

    #[test]
    fn node_error_line_is_found_among_the_noise() {
        let stderr = "node:assert:399\n    throw err;\n    ^\n\nAssertionError [ERR_ASSERTION]: fib(5)\n    at Object.<anonymous> (/sandbox/main.js:9:1)\n\nNode.js v20.20.2\n";
        assert_eq!(
            reason(
                &ended(Some(1), None, stderr),
                Language::JavaScript,
                Step::Run
            )
            .unwrap(),
            "exit code 1: AssertionError [ERR_ASSERTION]: fib(5)"
        );
    }

    #[test]
    fn rust_panic_message_and_compile_errors() {
        let panic = "\nthread 'main' panicked at main.rs:9:5:\nassertion `left == right` failed\n  left: 3\n right: 5\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            reason(&ended(Some(101), None, panic), Language::Rust, Step::Run).unwrap(),
            "exit code 101: thread 'main' panicked at main.rs:9:5: assertion `left == right` failed left: 3 right: 5"
        );
        let compile = "error[E0425]: cannot find value `x` in this scope\n --> main.rs:3:5\n  |\n";
        assert_eq!(
            reason(
                &ended(Some(1), None, compile),
                Language::Rust,
                Step::Compile
            )
            .unwrap(),
            "compile error: error[E0425]: cannot find value `x` in this scope (main.rs:3:5)"
        );
    }

    #[test]
    fn limits_are_named() {
        let memory = ended(Some(1), None, "Traceback...\nMemoryError\n");
        assert_eq!(
            reason(&memory, Language::Python, Step::Run).unwrap(),
            "exceeded the 1 GiB memory limit (MemoryError)"
        );
        let cpu = ended(None, Some(libc::SIGXCPU), "");
        assert_eq!(
            reason(&cpu, Language::Python, Step::Run).unwrap(),
            "exceeded the 10 s CPU-time limit"
        );
        let mut timeout = ended(None, Some(libc::SIGKILL), "");
        timeout.timed_out = true;
        assert_eq!(
            reason(&timeout, Language::Python, Step::Run).unwrap(),
            "killed after 10 s wall-clock timeout"
        );
        assert_eq!(
            reason(
                &ended(Some(0), None, "warning"),
                Language::Python,
                Step::Run
            ),
            None
        );
    }
}
