//! The engine's files (tiny models, the Hub token) are written to a temporary file in the same
//! folder and renamed into place, as the binary writes its reports: an interrupted write leaves
//! the previous file whole, never a cut one.

use std::path::Path;

use crate::error::EngineError;

/// Writes `path` through a temporary file in its folder; `write` fills the temporary file.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let io = |e: std::io::Error| EngineError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = tempfile::Builder::new()
        .prefix(".versus-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(io)?;
    write(temporary.path())?;
    temporary.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in its folder.
pub(crate) fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    write_atomically(path, |temporary| {
        std::fs::write(temporary, bytes).map_err(|e| EngineError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_bytes_atomically(&path, b"old").unwrap();
        let failed = write_atomically(&path, |temporary| {
            std::fs::write(temporary, b"half").unwrap();
            Err(EngineError::Other("killed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
