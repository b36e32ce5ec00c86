//! versus-sandbox: runs untrusted, model-written code (Python, JavaScript, Rust) against a task's
//! tests, and finds that code in a Markdown answer.
//!
//! ```no_run
//! use versus_sandbox::{run_answer, Language, Limits};
//!
//! let answer = "```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```";
//! let tests = "assert candidate(10) == 55";
//! let execution = run_answer(answer, Language::Python, tests, None, &Limits::default())?;
//! assert!(execution.passed, "{:?}", execution.reason);
//! # Ok::<(), versus_sandbox::SandboxError>(())
//! ```
//!
//! # What a pass means
//!
//! The tests ran to the end and succeeded: the program exited with 0 *and* printed, as its last
//! line, an end-of-tests marker drawn at random for the run, which the harness prints after the
//! last test. An answer that exits early (`sys.exit(0)`, `process.exit(0)`,
//! `std::process::exit(0)`) fails, and [`Execution::reason`] says how; the answer's own
//! `macro_rules! assert_eq`, a patched `builtins` or `assert` module do not reach the tests
//! (`program.rs` has the details per language).
//!
//! # How code is contained
//!
//! - **Isolation** by bubblewrap (`bubblewrap.rs` has the details): no network, a private
//!   filesystem that shows only the system directories and the toolchain read-only (never the
//!   home directory), no other processes, a cleared environment. Without bubblewrap,
//!   [`run`] refuses unless [`Limits::allow_unsandboxed`] says otherwise.
//! - **Resource limits** set with `setrlimit` before anything runs: CPU seconds, address space,
//!   file size, open files, no core dumps, and processes (`RLIMIT_NPROC`, counted for a uid or
//!   user namespace of the run's own, so that a fork bomb stalls at the limit).
//! - **Disk and memory**: the only writable places are size-capped in-memory file systems, and
//!   stdout and stderr are read concurrently and capped: past the cap the program is killed.
//! - **Time**: at the wall-clock limit the whole sandbox is killed (its process group, and with
//!   bwrap its pid namespace, so nothing survives).

mod bubblewrap;
mod error;
mod execution;
mod extract;
mod harness;
mod language;
mod limits;
mod memory_cap;
mod process;
mod program;
mod run;
mod toolchain;

pub use bubblewrap::{sandbox_available, SandboxKind};
pub use error::{SandboxError, INSTALL_HINT, NAMESPACE_HINT};
pub use execution::Execution;
pub use extract::{extract_code_blocks, find_function_name, top_level_function_names};
pub use language::{Language, UnknownLanguage};
pub use limits::Limits;
pub use program::{AnswerError, Program};
pub use run::{run, run_answer, run_unsandboxed};
