//! Reading a GGUF file's header safely. candle's reader trusts some of what a file says
//! (`general.alignment = 0` divides by zero; tensor dimensions whose product overflows, or
//! offsets past the end, panic in arithmetic): `read_content` checks those before and after
//! handing the file to candle, so that no input file can panic the process.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::error::{candle_reason, EngineError};

/// GGUF's magic number, "GGUF" read little-endian.
const GGUF_MAGIC: u32 = 0x4655_4747;
/// Arrays nested deeper than this are refused (candle's own limit).
const MAX_VALUE_DEPTH: usize = 64;
/// The largest alignment accepted; real files use 32.
const MAX_ALIGNMENT: u64 = 1 << 20;

/// A GGUF file's header read by candle after the checks candle does not make, with the file's
/// length and a reader positioned anywhere.
pub struct CheckedGguf {
    pub content: gguf_file::Content,
    pub file_length: u64,
    pub reader: BufReader<File>,
}

/// Opens and reads a GGUF file's header: metadata and tensor infos, every value candle would
/// otherwise trust checked (alignment, tensor sizes and offsets).
pub fn read_content(path: &Path) -> Result<CheckedGguf, EngineError> {
    let invalid = |reason: String| EngineError::InvalidFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|error| EngineError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let file_length = file
        .metadata()
        .map_err(|error| EngineError::Io {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?
        .len();
    let mut reader = BufReader::new(file);
    check_metadata(&mut reader, file_length).map_err(invalid)?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| invalid(e.to_string()))?;
    let content = gguf_file::Content::read(&mut reader).map_err(|error| {
        invalid(format!(
            "not a valid GGUF file (truncated or corrupt?): {}",
            candle_reason(&error)
        ))
    })?;
    for (name, info) in &content.tensor_infos {
        check_tensor(name, info, content.tensor_data_offset, file_length).map_err(|reason| {
            EngineError::Tensor {
                file: path.display().to_string(),
                name: name.clone(),
                reason,
            }
        })?;
    }
    Ok(CheckedGguf {
        content,
        file_length,
        reader,
    })
}

/// A tensor's size and place, in checked arithmetic: whole blocks, and data inside the file.
fn check_tensor(
    name: &str,
    info: &gguf_file::TensorInfo,
    data_offset: u64,
    file_length: u64,
) -> Result<(), String> {
    let dims = info.shape.dims();
    let elements = dims
        .iter()
        .try_fold(1usize, |product, &dim| product.checked_mul(dim))
        .ok_or_else(|| format!("its dimensions {dims:?} multiply past any possible size"))?;
    let block_size = info.ggml_dtype.block_size();
    if elements % block_size != 0 {
        return Err(format!(
            "{elements} elements do not fill whole {:?} blocks of {block_size}",
            info.ggml_dtype
        ));
    }
    let bytes = (elements / block_size)
        .checked_mul(info.ggml_dtype.type_size())
        .and_then(|bytes| u64::try_from(bytes).ok());
    let end = bytes
        .and_then(|bytes| data_offset.checked_add(info.offset)?.checked_add(bytes))
        .ok_or_else(|| format!("tensor `{name}`'s offset and size overflow"))?;
    if end > file_length {
        return Err(format!(
            "its data ends at byte {end} but the file has {file_length} bytes (truncated file?)"
        ));
    }
    Ok(())
}

/// Walks the header's metadata as candle will, checking what candle trusts: an alignment of 0
/// (a division by zero in candle), one that is not a power of two, or an absurd one.
fn check_metadata(reader: &mut (impl Read + Seek), file_length: u64) -> Result<(), String> {
    let mut walker = Walker {
        reader,
        file_length,
        wide: true,
    };
    let magic = walker.u32()?;
    if magic != GGUF_MAGIC {
        return Err(format!(
            "not a GGUF file: it starts with {:02x?}, not `GGUF`",
            magic.to_le_bytes()
        ));
    }
    let version = walker.u32()?;
    if !(1..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not one versus reads (1 to 3)"
        ));
    }
    walker.wide = version >= 2;
    let _tensor_count = walker.length()?;
    let metadata_count = walker.length()?;
    // Every entry takes at least 5 bytes: the count cannot exceed what the file holds.
    if metadata_count > file_length / 5 {
        return Err(format!(
            "the header declares {metadata_count} metadata entries, more than the file can hold"
        ));
    }
    for _ in 0..metadata_count {
        let key = walker.string()?;
        let value_type = walker.u32()?;
        if key == "general.alignment" {
            let alignment = match value_type {
                0 | 1 => u64::from(walker.bytes::<1>()?[0]),
                2 | 3 => u64::from(u16::from_le_bytes(walker.bytes::<2>()?)),
                4 | 5 => u64::from(walker.u32()?),
                _ => {
                    walker.skip_value(value_type, 0)?;
                    continue;
                }
            };
            // Signed types are read as their bit patterns: a negative one is absurd too.
            if alignment == 0 || !alignment.is_power_of_two() || alignment > MAX_ALIGNMENT {
                return Err(format!(
                    "general.alignment is {alignment}; it must be a power of two up to {MAX_ALIGNMENT}"
                ));
            }
        } else {
            walker.skip_value(value_type, 0)?;
        }
    }
    Ok(())
}

/// Reads GGUF's little-endian values, never past the file's end.
struct Walker<'r, R> {
    reader: &'r mut R,
    file_length: u64,
    /// GGUF 2 and later write lengths as u64; GGUF 1 as u32.
    wide: bool,
}

impl<R: Read + Seek> Walker<'_, R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buffer = [0u8; N];
        self.reader
            .read_exact(&mut buffer)
            .map_err(|_| "the header ends early (truncated file?)".to_string())?;
        Ok(buffer)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes::<4>()?))
    }

    fn length(&mut self) -> Result<u64, String> {
        if self.wide {
            Ok(u64::from_le_bytes(self.bytes::<8>()?))
        } else {
            Ok(u64::from(self.u32()?))
        }
    }

    fn remaining(&mut self) -> Result<u64, String> {
        let position = self.reader.stream_position().map_err(|e| e.to_string())?;
        Ok(self.file_length.saturating_sub(position))
    }

    /// Moves past `count` bytes that must be in the file.
    fn skip(&mut self, count: u64) -> Result<(), String> {
        if count > self.remaining()? {
            return Err("a value runs past the end of the file (truncated file?)".to_string());
        }
        let offset = i64::try_from(count).map_err(|_| "a value is too long".to_string())?;
        self.reader
            .seek(SeekFrom::Current(offset))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn string(&mut self) -> Result<String, String> {
        let length = self.length()?;
        if length > self.remaining()? || length > 1 << 30 {
            return Err(format!(
                "a string of {length} bytes runs past the end of the file"
            ));
        }
        let mut bytes = vec![0u8; length as usize];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|_| "the header ends early (truncated file?)".to_string())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn skip_value(&mut self, value_type: u32, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return Err(format!(
                "arrays are nested more than {MAX_VALUE_DEPTH} deep"
            ));
        }
        match fixed_size(value_type) {
            Some(size) => self.skip(size),
            None if value_type == 8 => {
                let length = self.length()?;
                self.skip(length)
            }
            None if value_type == 9 => {
                let element_type = self.u32()?;
                let count = self.length()?;
                match fixed_size(element_type) {
                    Some(size) => self.skip(
                        count
                            .checked_mul(size)
                            .ok_or_else(|| format!("an array of {count} values is too long"))?,
                    ),
                    None => {
                        // Each element takes at least 4 bytes (a length or a type): the count
                        // cannot exceed what the file holds, so this loop is bounded by it.
                        if count > self.remaining()? / 4 {
                            return Err(format!(
                                "an array of {count} values runs past the end of the file"
                            ));
                        }
                        for _ in 0..count {
                            self.skip_value(element_type, depth + 1)?;
                        }
                        Ok(())
                    }
                }
            }
            None => Err(format!("unknown GGUF value type {value_type}")),
        }
    }
}

/// The size of a fixed-size GGUF value type, `None` for strings, arrays and unknown types.
fn fixed_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with the given metadata entries (already encoded) and no tensors.
    fn header(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"GGUF");
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for entry in entries {
            bytes.extend_from_slice(entry);
        }
        bytes
    }

    fn entry(key: &str, value_type: u32, value: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(&value_type.to_le_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<CheckedGguf, EngineError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        read_content(&path)
    }

    #[test]
    fn an_alignment_of_zero_is_an_error_not_a_panic() {
        for (value_type, value) in [
            (4u32, 0u32.to_le_bytes().to_vec()),
            (0, vec![0]),
            (4, 3u32.to_le_bytes().to_vec()),
            (5, (-32i32).to_le_bytes().to_vec()),
        ] {
            let file = header(&[entry("general.alignment", value_type, &value)]);
            let error = read(&file).err().expect("refused").to_string();
            assert!(error.contains("general.alignment"), "{error}");
        }
        let good = header(&[
            entry(
                "general.name",
                8,
                &[&5u64.to_le_bytes()[..], b"tiny!"].concat(),
            ),
            entry("general.alignment", 4, &64u32.to_le_bytes()),
        ]);
        assert!(read(&good).is_ok());
    }

    #[test]
    fn absurd_counts_and_lengths_are_errors() {
        let mut many = header(&[]);
        many[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&many).is_err());
        let long_string = header(&[entry("k", 8, &u64::MAX.to_le_bytes())]);
        assert!(read(&long_string).is_err());
        let mut array = Vec::new();
        array.extend_from_slice(&8u32.to_le_bytes());
        array.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(read(&header(&[entry("k", 9, &array)])).is_err());
        assert!(read(b"GGU").is_err());
        assert!(read(b"NOPE\x03\x00\x00\x00").is_err());
    }

    #[test]
    fn tensors_whose_size_overflows_or_leaves_the_file_are_errors() {
        // One F32 tensor of 2^62 x 2^62 elements at offset 0.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"GGUF");
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(b'w');
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let error = read(&bytes).err().expect("refused").to_string();
        assert!(error.contains("`w`") || error.contains("w:"), "{error}");
    }
}
