//! Files versus writes (reports, exports, the demo's suite) go to a temporary file in the same
//! folder and are renamed into place, so a crash, a kill or a full disk mid-write leaves the
//! previous file whole instead of an empty or cut one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `contents` to `path` through a temporary file in the same folder, renamed into place.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_with(path, |file| file.write_all(contents))
}

/// Like `write_atomically`, with the bytes written by `write`; if it fails, `path` is untouched
/// and the temporary file is removed.
fn write_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(folder)
        .with_context(|| {
            format!(
                "cannot write {}: cannot create a temporary file in {}",
                path.display(),
                folder.display()
            )
        })?;
    write(temporary.as_file_mut())
        .and_then(|()| temporary.as_file_mut().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temporary
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.md");
        write_atomically(&path, b"the previous report").unwrap();
        let error = write_with(&path, |file| {
            file.write_all(b"half a rep")?;
            Err(std::io::Error::other("killed mid-write"))
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("report.md"), "{error:#}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "the previous report"
        );
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        write_atomically(&path, b"the new report").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the new report");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_working_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
