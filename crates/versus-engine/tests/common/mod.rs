//! Shared by the engine's integration tests: where the model fixtures are.

use std::path::PathBuf;

/// The model fixtures: `tests/fixtures/models` in this crate, or the folder `VERSUS_FIXTURES`
/// names. Panics, saying where it looked, if that folder does not hold them.
pub fn fixtures_dir() -> PathBuf {
    let dir = match std::env::var_os("VERSUS_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/models"
        )),
    };
    assert!(
        dir.join("README.md").is_file() && dir.join("tiny-phi4").is_dir(),
        "model fixtures not found at {} (expected README.md and tiny-phi4/ there); they live in \
         crates/versus-engine/tests/fixtures/models, and VERSUS_FIXTURES overrides \
         that folder",
        dir.display()
    );
    dir
}
