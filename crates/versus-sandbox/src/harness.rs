//! What a passing run must show, so that a pass means the tests ran to the end and succeeded:
//! the end-of-tests marker (drawn at random for each program), the harness's own failure report
//! (a line on stderr and an exit code), and reading both back from what the run printed.
//!
//! Exit status 0 alone proves nothing: an answer can call `sys.exit(0)` or `process.exit(0)`
//! before a single test runs. So the harness that joins an answer to its tests (`program.rs`)
//! prints, after the last test, a line that did not exist when the answer was written, and a run
//! passes only if it exits with 0 *and* that line is the last line of its stdout, printed once.
//! Where the harness can catch an early exit itself (Python's `SystemExit`, Node's
//! `process.exit`), it says so on stderr (`versus-harness: the answer exited before the tests
//! ran (SystemExit(0))`) and exits with [`HARNESS_EXIT_CODE`].
//!
//! What this cannot stop: the marker is in the harness, which runs in the same process as the
//! answer, so code written against this harness, to find the marker at run time (in the
//! program's source file, `include_str!(file!())`, or the interpreter's memory), print it and
//! exit with 0, would pass. The marker defeats answers that exit early, print a guessed or stale
//! marker, or leave the tests unrun.

/// The exit code the harness uses when it stops a run itself, with a [`HARNESS_PREFIX`] line on
/// stderr saying why.
pub(crate) const HARNESS_EXIT_CODE: i32 = 86;

/// How the harness's own failure report starts, on a line of stderr.
pub(crate) const HARNESS_PREFIX: &str = "versus-harness: ";

/// How every end-of-tests marker starts; 128 random bits follow, in hexadecimal.
const MARKER_PREFIX: &str = "versus-end-of-tests-";

/// A fresh end-of-tests marker, from the operating system's random source.
///
/// # Panics
///
/// If the operating system has no randomness to give (getrandom fails): a predictable marker
/// would let answers pass without running the tests.
pub(crate) fn new_end_marker() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .unwrap_or_else(|error| panic!("no randomness for the end-of-tests marker: {error}"));
    let mut marker = String::from(MARKER_PREFIX);
    for byte in bytes {
        marker.push_str(&format!("{byte:02x}"));
    }
    marker
}

/// What the harness writes: the marker on a line of its own (after a newline, in case the tests
/// left a line unfinished).
pub(crate) fn end_marker_output(marker: &str) -> String {
    format!("\n{marker}\n")
}

/// Where the end-of-tests marker was found in a run's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerSeen {
    /// Once, as the last line: the tests finished.
    Last,
    /// Nowhere: the program ended before the tests did.
    Missing,
    /// Once, but something was printed after it.
    NotLast,
    /// More than once: someone other than the harness printed it.
    Repeated,
}

impl MarkerSeen {
    /// Why a run that exited with 0 did not pass, or `None` when the tests finished.
    pub(crate) fn failure(self) -> Option<&'static str> {
        match self {
            MarkerSeen::Last => None,
            MarkerSeen::Missing => Some(
                "the tests did not finish: the process exited with 0 before the end-of-tests marker",
            ),
            MarkerSeen::NotLast => Some(
                "the tests did not finish cleanly: something was printed after the end-of-tests marker",
            ),
            MarkerSeen::Repeated => Some(
                "the end-of-tests marker was printed more than once: only the harness may print it",
            ),
        }
    }
}

/// Finds `marker` in `stdout`, and when it is the last line, as the harness writes it, takes it
/// out, so that stdout holds what the program itself printed.
pub(crate) fn take_end_marker(stdout: &mut String, marker: &str) -> MarkerSeen {
    let written = end_marker_output(marker);
    match stdout.matches(marker).count() {
        0 => MarkerSeen::Missing,
        1 if stdout.ends_with(&written) => {
            stdout.truncate(stdout.len() - written.len());
            MarkerSeen::Last
        }
        1 => MarkerSeen::NotLast,
        _ => MarkerSeen::Repeated,
    }
}

/// The harness's own failure report, when it is the last line of `stderr` (the harness exits
/// right after writing it), taken out of `stderr`, since the reason will say it.
pub(crate) fn take_harness_reason(stderr: &mut String) -> Option<String> {
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    let start = body.rfind('\n').map_or(0, |newline| newline + 1);
    let reason = body[start..]
        .strip_prefix(HARNESS_PREFIX)?
        .trim()
        .to_string();
    if reason.is_empty() {
        return None;
    }
    // The harness writes a newline first, in case the line before was left unfinished.
    let cut = if stderr[..start].ends_with("\n\n") || start == 1 {
        start - 1
    } else {
        start
    };
    stderr.truncate(cut);
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_fresh_and_unguessable() {
        let first = new_end_marker();
        let second = new_end_marker();
        assert_ne!(first, second);
        assert!(first.starts_with(MARKER_PREFIX));
        assert_eq!(first.len(), MARKER_PREFIX.len() + 32);
        assert!(first[MARKER_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_marker_counts_only_as_the_one_last_line() {
        let marker = "versus-end-of-tests-abc";
        let seen = |stdout: &str| {
            let mut stdout = stdout.to_string();
            let seen = take_end_marker(&mut stdout, marker);
            (seen, stdout)
        };
        assert_eq!(
            seen("55\nversus-end-of-tests-abc\n"),
            (MarkerSeen::Last, "55".into())
        );
        assert_eq!(
            seen("55\n\nversus-end-of-tests-abc\n"),
            (MarkerSeen::Last, "55\n".into())
        );
        assert_eq!(
            seen("\nversus-end-of-tests-abc\n"),
            (MarkerSeen::Last, String::new())
        );
        assert_eq!(seen("55\n").0, MarkerSeen::Missing);
        assert_eq!(seen("\nversus-end-of-tests-abd\n").0, MarkerSeen::Missing);
        assert_eq!(
            seen("\nversus-end-of-tests-abc\nlater\n").0,
            MarkerSeen::NotLast
        );
        // On a line of its own: glued to other output it is not the harness's.
        assert_eq!(seen("55versus-end-of-tests-abc\n").0, MarkerSeen::NotLast);
        assert_eq!(
            seen("versus-end-of-tests-abc\n\nversus-end-of-tests-abc\n").0,
            MarkerSeen::Repeated
        );
        assert!(MarkerSeen::Missing
            .failure()
            .unwrap()
            .contains("before the end-of-tests marker"));
    }

    #[test]
    fn the_harness_reason_is_its_last_line_on_stderr() {
        let take = |stderr: &str| {
            let mut stderr = stderr.to_string();
            let reason = take_harness_reason(&mut stderr);
            (reason, stderr)
        };
        let reason = "the answer exited before the tests ran (SystemExit(0))";
        assert_eq!(
            take(&format!("noise\n\nversus-harness: {reason}\n")),
            (Some(reason.to_string()), "noise\n".to_string())
        );
        assert_eq!(
            take(&format!("unfinished\nversus-harness: {reason}\n")),
            (Some(reason.to_string()), "unfinished\n".to_string())
        );
        assert_eq!(
            take(&format!("\nversus-harness: {reason}\n")),
            (Some(reason.to_string()), String::new())
        );
        // Only as the last line.
        let earlier = format!("versus-harness: {reason}\nTraceback\nAssertionError\n");
        assert_eq!(take(&earlier), (None, earlier.clone()));
        assert_eq!(take("versus-harness: \n").0, None);
    }
}
