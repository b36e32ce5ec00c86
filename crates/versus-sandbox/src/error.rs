//! Why code could not be run at all (as opposed to code that ran and failed, which is an
//! [`Execution`](crate::Execution) with `passed: false`). Every message says what to do.

use std::io;
use std::path::PathBuf;

use crate::Language;

/// How to install bubblewrap, quoted by the errors that need it.
pub const INSTALL_HINT: &str =
    "install bubblewrap (`apt-get install bubblewrap`, `dnf install bubblewrap`, `pacman -S bubblewrap`)";

/// What to check when bubblewrap is installed but cannot create namespaces.
pub const NAMESPACE_HINT: &str = "bubblewrap needs to create Linux namespaces: as root it needs \
CAP_SYS_ADMIN (in Docker: `--privileged`, or `--cap-add SYS_ADMIN --security-opt \
seccomp=unconfined --security-opt apparmor=unconfined`); as another user it needs unprivileged \
user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, and on Ubuntu 24.04+ \
`sysctl kernel.apparmor_restrict_unprivileged_userns=0`)";

/// Code could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "bubblewrap (bwrap) is not installed, so untrusted code cannot be isolated; {INSTALL_HINT}, \
         or allow unsandboxed execution explicitly (resource limits and a timeout only)"
    )]
    NoSandbox,

    #[error("bubblewrap at {} cannot create a sandbox here: {stderr}\n{NAMESPACE_HINT}", bwrap.display())]
    SandboxUnusable { bwrap: PathBuf, stderr: String },

    #[error("the sandbox needs `{tool}` ({package}), which is not installed; install it (`apt-get install {package}`)")]
    HelperMissing {
        tool: &'static str,
        package: &'static str,
    },

    #[error("bubblewrap failed to set up the sandbox (not the program's fault): {stderr}")]
    SandboxFailed { stderr: String },

    #[error("cannot run {language}: {detail}")]
    ToolchainMissing { language: Language, detail: String },

    #[error(
        "without bubblewrap, code run by root runs as the unprivileged uid {uid}, which cannot \
         reach {}; {INSTALL_HINT} so the toolchain can be bound into a sandbox instead",
        path.display()
    )]
    ToolchainUnreachable { path: PathBuf, uid: u32 },

    #[error("could not {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    /// An I/O error, with what was being attempted.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
        let action = action.into();
        move |source| SandboxError::Io { action, source }
    }
}
