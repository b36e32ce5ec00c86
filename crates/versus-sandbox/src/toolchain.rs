//! Finding each language's interpreter or compiler, and the directories outside the system ones
//! (`/usr`, `/bin`, `/lib`...) it needs, which are bound read-only into the sandbox and nothing
//! more: a pyenv Python lives in `~/.pyenv/versions/X`, a rustup toolchain in
//! `~/.rustup/toolchains/X`, and the rest of the home directory (keys, tokens, `~/.cargo` with its
//! credentials) must stay out of reach.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::{Language, SandboxError};

/// What it takes to run one language.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    /// The interpreter or compiler: an absolute, symlink-free path (not a pyenv shim or a rustup
    /// proxy, which would need the home directory and network access to work).
    pub program: PathBuf,
    /// Directories outside the system directories that the program needs, bound read-only.
    pub directories: Vec<PathBuf>,
}

/// Directories the sandbox binds (or links) wholesale; anything under them needs no extra bind.
pub(crate) const SYSTEM_DIRECTORIES: [&str; 6] =
    ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"];

pub(crate) fn is_system_path(path: &Path) -> bool {
    SYSTEM_DIRECTORIES.iter().any(|dir| path.starts_with(dir))
}

/// The toolchain for `language`, found once per process.
pub(crate) fn toolchain(language: Language) -> Result<Toolchain, SandboxError> {
    static PYTHON: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static JAVASCRIPT: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static RUST: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    let found = match language {
        Language::Python => PYTHON.get_or_init(find_python),
        Language::JavaScript => JAVASCRIPT.get_or_init(find_node),
        Language::Rust => RUST.get_or_init(find_rustc),
    };
    found
        .clone()
        .map_err(|detail| SandboxError::ToolchainMissing { language, detail })
}

/// An executable named `name` on `PATH` (or in the usual system directories).
pub(crate) fn find_executable(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs a trusted helper (the toolchain itself, outside the sandbox) for one line of facts.
fn ask(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run {}: {error}", program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "`{} {}` failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn canonical(path: &Path) -> Result<PathBuf, String> {
    path.canonicalize()
        .map_err(|error| format!("cannot resolve {}: {error}", path.display()))
}

fn find_python() -> Result<Toolchain, String> {
    let launcher =
        find_executable("python3").ok_or("python3 is not installed (apt-get install python3)")?;
    // A pyenv shim or a virtual environment's python is only a pointer: ask the interpreter for
    // its real executable and installation prefix.
    let facts = ask(
        &launcher,
        &[
            "-I",
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable)); print(os.path.realpath(sys.base_prefix))",
        ],
    )?;
    let mut lines = facts.lines();
    let (Some(executable), Some(prefix)) = (lines.next(), lines.next()) else {
        return Err(format!("{} did not say where it lives", launcher.display()));
    };
    let program = canonical(Path::new(executable))?;
    let mut directories = Vec::new();
    let prefix = PathBuf::from(prefix);
    if !is_system_path(&prefix) {
        directories.push(prefix.clone());
    }
    if !is_system_path(&program) && !program.starts_with(&prefix) {
        directories.push(program.parent().unwrap_or(&program).to_path_buf());
    }
    Ok(Toolchain {
        program,
        directories,
    })
}

fn find_node() -> Result<Toolchain, String> {
    let launcher = find_executable("node")
        .or_else(|| find_executable("nodejs"))
        .ok_or("node is not installed (apt-get install nodejs)")?;
    let program = canonical(&launcher)?;
    let mut directories = Vec::new();
    if !is_system_path(&program) {
        // An nvm or tarball install: `<prefix>/bin/node` with its libraries under `<prefix>`.
        let bin = program.parent().unwrap_or(&program);
        let prefix = if bin.ends_with("bin") {
            bin.parent().unwrap_or(bin)
        } else {
            bin
        };
        directories.push(prefix.to_path_buf());
    }
    Ok(Toolchain {
        program,
        directories,
    })
}

fn find_rustc() -> Result<Toolchain, String> {
    let launcher = find_executable("rustc")
        .ok_or("rustc is not installed (https://rustup.rs, or apt-get install rustc)")?;
    // `~/.cargo/bin/rustc` is rustup's proxy, which needs the home directory; the toolchain's
    // own rustc lives in its sysroot, which is all that gets bound.
    let sysroot = ask(&launcher, &["--print", "sysroot"])?;
    let sysroot = canonical(Path::new(sysroot.trim()))?;
    let program = sysroot.join("bin").join("rustc");
    if !is_executable(&program) {
        return Err(format!("{} is not an executable", program.display()));
    }
    if find_executable("cc").is_none() {
        return Err(
            "rustc needs a C linker, `cc`, which is not installed (apt-get install gcc)".into(),
        );
    }
    let directories = if is_system_path(&sysroot) {
        Vec::new()
    } else {
        vec![sysroot]
    };
    Ok(Toolchain {
        program,
        directories,
    })
}

/// The first directory on the way to `path` that others cannot enter (mode without `o+x`),
/// if any: what an unprivileged uid would trip over.
pub(crate) fn first_closed_directory(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|dir| {
            dir.metadata()
                .is_ok_and(|meta| meta.permissions().mode() & 0o001 == 0)
        })
        .map(Path::to_path_buf)
}
