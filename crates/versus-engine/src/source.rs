//! Where a local model's files come from: a Hugging Face Hub repo (downloaded into the standard
//! cache, or read from it offline), a model folder on disk, or a single GGUF file. Also the
//! Hub token (`HF_TOKEN` or the token file `huggingface-cli login` writes) and the memory check.

use std::path::{Path, PathBuf};

use versus_core::ModelSpec;

use crate::error::EngineError;

/// The files of a local model, resolved on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// A Hugging Face model folder: config.json, tokenizer files, safetensors weights.
    Folder { dir: PathBuf },
    /// One GGUF file holding weights, hyper-parameters, tokenizer and template.
    Gguf { path: PathBuf },
}

impl ModelFiles {
    /// The bytes of weights on disk (all safetensors shards, or the GGUF file).
    pub fn weight_bytes(&self) -> u64 {
        match self {
            ModelFiles::Gguf { path } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            ModelFiles::Folder { dir } => std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0),
        }
    }
}

/// The files a folder model needs; the optional ones are fetched when the repo has them.
const REQUIRED_FILES: &[&str] = &["config.json", "tokenizer.json"];
const OPTIONAL_FILES: &[&str] = &[
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
];
const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
const SAFETENSORS_SINGLE: &str = "model.safetensors";

/// Resolves a local spec (`hf:`, `local:`, `gguf:`) to files on disk, downloading from the Hub
/// when needed. Hosted specs are an error.
pub async fn resolve(spec: &ModelSpec) -> Result<ModelFiles, EngineError> {
    match spec {
        ModelSpec::LocalDir { path } => resolve_folder(Path::new(path)),
        ModelSpec::Gguf { path } => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(EngineError::Io {
                    path,
                    reason: "no such GGUF file".into(),
                });
            }
            Ok(ModelFiles::Gguf { path })
        }
        ModelSpec::HuggingFace { repo, revision } => {
            download(repo, revision.as_deref().unwrap_or("main")).await
        }
        other => Err(EngineError::Other(format!(
            "`{other}` is a hosted model, not a local one"
        ))),
    }
}

fn resolve_folder(dir: &Path) -> Result<ModelFiles, EngineError> {
    if !dir.is_dir() {
        return Err(EngineError::Io {
            path: dir.to_path_buf(),
            reason: "no such model folder".into(),
        });
    }
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(EngineError::InvalidFile {
                path: dir.join(file),
                reason: format!(
                    "missing: a model folder needs {}",
                    REQUIRED_FILES.join(", ")
                ),
            });
        }
    }
    if !dir.join(SAFETENSORS_SINGLE).is_file() && !dir.join(SAFETENSORS_INDEX).is_file() {
        return Err(EngineError::InvalidFile {
            path: dir.to_path_buf(),
            reason: format!("no weights: expected {SAFETENSORS_SINGLE} or {SAFETENSORS_INDEX}"),
        });
    }
    Ok(ModelFiles::Folder {
        dir: dir.to_path_buf(),
    })
}

/// The Hub cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    hf_home().join("hub")
}

/// `HF_HOME`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    if let Some(home) = non_empty_env("HF_HOME") {
        return PathBuf::from(home);
    }
    let home = non_empty_env("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".cache").join("huggingface")
}

/// Where `huggingface-cli login` (and `versus login hf`) keep the token.
pub fn token_path() -> PathBuf {
    non_empty_env("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| hf_home().join("token"))
}

/// The Hub token: `HF_TOKEN`, else the token file.
pub fn hub_token() -> Option<String> {
    if let Some(token) = non_empty_env("HF_TOKEN") {
        return Some(token.trim().to_string());
    }
    std::fs::read_to_string(token_path())
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Stores a Hub token where `huggingface-cli login` does, readable by the user only.
pub fn save_hub_token(token: &str) -> Result<PathBuf, EngineError> {
    let path = token_path();
    let io = |e: std::io::Error| EngineError::Io {
        path: path.clone(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // The temporary file is created readable by the user only, and so is the token.
    crate::files::write_bytes_atomically(&path, token.trim().as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(path)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn offline() -> bool {
    non_empty_env("HF_HUB_OFFLINE").is_some_and(|v| v != "0" && v.to_lowercase() != "false")
}

async fn download(repo: &str, revision: &str) -> Result<ModelFiles, EngineError> {
    let repo_ref =
        hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, revision.into());
    let cache = hf_hub::Cache::new(hub_cache_dir());
    if offline() {
        return from_cache(&cache.repo(repo_ref), repo, revision);
    }
    let api = hf_hub::api::tokio::ApiBuilder::new()
        .with_cache_dir(hub_cache_dir())
        .with_token(hub_token())
        .with_progress(true)
        .build()
        .map_err(|e| EngineError::Other(format!("cannot set up the Hub client: {e}")))?;
    let remote = api.repo(repo_ref.clone());
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = remote
            .get(file)
            .await
            .map_err(|e| hub_error(repo, file, &e))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    for file in OPTIONAL_FILES {
        // Not every repo ships every file (Qwen has no special_tokens_map.json).
        let _ = remote.get(file).await;
    }
    match remote.get(SAFETENSORS_INDEX).await {
        Ok(index_path) => {
            for shard in shard_names(&index_path)? {
                remote
                    .get(&shard)
                    .await
                    .map_err(|e| hub_error(repo, &shard, &e))?;
            }
        }
        Err(_) => {
            remote
                .get(SAFETENSORS_SINGLE)
                .await
                .map_err(|e| hub_error(repo, SAFETENSORS_SINGLE, &e))?;
        }
    }
    let dir = dir.ok_or_else(|| EngineError::Other(format!("hf:{repo}: no files downloaded")))?;
    Ok(ModelFiles::Folder { dir })
}

fn from_cache(
    cache: &hf_hub::CacheRepo,
    repo: &str,
    revision: &str,
) -> Result<ModelFiles, EngineError> {
    let missing = |file: &str| {
        EngineError::Other(format!(
            "hf:{repo}@{revision}: {file} is not in the Hub cache at {} and HF_HUB_OFFLINE is set; run once online (unset HF_HUB_OFFLINE) to download it",
            hub_cache_dir().display()
        ))
    };
    let config = cache
        .get("config.json")
        .ok_or_else(|| missing("config.json"))?;
    cache
        .get("tokenizer.json")
        .ok_or_else(|| missing("tokenizer.json"))?;
    if let Some(index) = cache.get(SAFETENSORS_INDEX) {
        for shard in shard_names(&index)? {
            cache.get(&shard).ok_or_else(|| missing(&shard))?;
        }
    } else {
        cache
            .get(SAFETENSORS_SINGLE)
            .ok_or_else(|| missing(SAFETENSORS_SINGLE))?;
    }
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| missing("config.json"))?;
    Ok(ModelFiles::Folder { dir })
}

/// The shard file names listed in a `model.safetensors.index.json`.
pub fn shard_names(index_path: &Path) -> Result<Vec<String>, EngineError> {
    let text = std::fs::read_to_string(index_path).map_err(|e| EngineError::Io {
        path: index_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EngineError::InvalidFile {
            path: index_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| EngineError::InvalidFile {
            path: index_path.to_path_buf(),
            reason: "no `weight_map` object".into(),
        })?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

fn hub_error(repo: &str, file: &str, error: &hf_hub::api::tokio::ApiError) -> EngineError {
    let text = error.to_string();
    let status = match error {
        hf_hub::api::tokio::ApiError::RequestError(e) => e.status().map(|s| s.as_u16()),
        _ => None,
    };
    let advice = match status {
        Some(401) | Some(403) => format!(
            "the repository is gated or private: accept its licence at https://huggingface.co/{repo}, then set HF_TOKEN or run `versus login hf`"
        ),
        Some(404) => format!("hf:{repo} has no {file} (check the repository name and revision)"),
        _ => "check the network, or set HF_HUB_OFFLINE=1 to use the cache only".into(),
    };
    EngineError::Other(format!(
        "hf:{repo}: cannot download {file}: {text}; {advice}"
    ))
}

/// Bytes of memory available to a new allocation (Linux `MemAvailable`), if known.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_need_config_tokenizer_and_weights() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve_folder(dir.path()).unwrap_err().to_string();
        assert!(error.contains("config.json"), "{error}");
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let error = resolve_folder(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no weights"), "{error}");
        std::fs::write(dir.path().join("model.safetensors"), "x").unwrap();
        assert!(resolve_folder(dir.path()).is_ok());
        assert!(resolve_folder(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn shard_names_are_read_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join(SAFETENSORS_INDEX);
        std::fs::write(
            &index,
            r#"{"metadata":{},"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(
            shard_names(&index).unwrap(),
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
    }

    #[test]
    fn memory_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(available_memory().unwrap() > 0);
        }
    }
}
