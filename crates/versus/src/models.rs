//! Turns the suite's model entries into `ChatModel`s: hosted models get an HTTP client with their
//! endpoint and key, local models are loaded in-process (their metadata read from the model);
//! a model that cannot be built gets the reason, recorded on each of its cells.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use versus_api::{ClientConfig, OpenAiClient, RetryPolicy, OPENAI_BASE_URL};
use versus_core::{
    ChatModel, Defaults, ErrorKind, Modality, ModelConfig, ModelError, ModelMetadata, ModelSpec,
};
use versus_engine::{LoadOptions, LocalModel};

/// The environment variable OpenAI's own clients read the key from.
const OPENAI_KEY_ENV: &str = "OPENAI_API_KEY";
/// The environment variable OpenAI's own clients read a different API root from.
const OPENAI_BASE_URL_ENV: &str = "OPENAI_BASE_URL";

/// A model ready to run, or the reason it cannot.
pub struct PreparedModel {
    pub config: ModelConfig,
    /// The API root requests go to (part of the cache key); `None` for local models.
    pub endpoint: Option<String>,
    pub model: Result<Arc<dyn ChatModel>, ModelError>,
}

/// Keys asked for at the terminal during this process, by variable name, so each is asked once.
#[derive(Default)]
pub struct KeyPrompter {
    entered: HashMap<String, String>,
    interactive: bool,
}

impl KeyPrompter {
    pub fn new(interactive: bool) -> KeyPrompter {
        KeyPrompter {
            entered: HashMap::new(),
            interactive: interactive && std::io::stdin().is_terminal(),
        }
    }

    /// The key from the environment, or typed at a hidden prompt (like Python's getpass) when
    /// the variable is unset and a person is at the terminal.
    fn key(&mut self, variable: &str, model_id: &str) -> Result<String, ModelError> {
        if let Ok(key) = std::env::var(variable) {
            if !key.trim().is_empty() {
                return Ok(key.trim().to_string());
            }
        }
        if let Some(key) = self.entered.get(variable) {
            return Ok(key.clone());
        }
        let missing = || {
            ModelError::new(
                ErrorKind::Config,
                format!(
                    "model `{model_id}` needs an API key: {variable} is not set; export {variable}=... and run again"
                ),
            )
        };
        if !self.interactive {
            return Err(missing());
        }
        let key = rpassword::prompt_password(format!(
            "{variable} is not set. API key for `{model_id}` (input hidden): "
        ))
        .map_err(|_| missing())?;
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(missing());
        }
        self.entered.insert(variable.to_string(), key.clone());
        Ok(key)
    }
}

pub async fn prepare(
    config: &ModelConfig,
    defaults: &Defaults,
    keys: &mut KeyPrompter,
) -> PreparedModel {
    let mut config = config.clone();
    let endpoint = endpoint(&config);
    let model = match (&config.spec, &endpoint) {
        (_, Err(error)) => Err(error.clone()),
        (ModelSpec::OpenAi { model }, Ok(Some(base_url)))
        | (ModelSpec::OpenAiCompatible { model }, Ok(Some(base_url))) => {
            hosted(&config, model, base_url, defaults, keys)
        }
        (_, _) => match load_local(&config).await {
            Ok(local) => {
                config.metadata = config.metadata.or(&local_metadata(&local));
                // A local model answers a batch at once: send it that many cells together
                // unless the suite says otherwise.
                config.concurrency = config.concurrency.or(Some(local.max_batch()));
                Ok(Arc::new(local) as Arc<dyn ChatModel>)
            }
            Err(error) => Err(error),
        },
    };
    PreparedModel {
        endpoint: endpoint.unwrap_or(None),
        config,
        model,
    }
}

/// Loads a local model with the suite's options (dtype, quantization, device, template variables).
pub async fn load_local(config: &ModelConfig) -> Result<LocalModel, ModelError> {
    let options = LoadOptions {
        dtype: config.local.dtype,
        quantize: config.local.quantize,
        device: config.local.device,
        chat_template_kwargs: config.local.chat_template_kwargs.clone(),
        force: config.local.force,
        context_for_estimate: 0,
        max_batch: config.local.batch,
        kv_budget_bytes: None,
    };
    LocalModel::load(&config.spec, options).await.map_err(|e| {
        ModelError::new(
            ErrorKind::Config,
            format!("cannot load model `{}` ({}): {e}", config.id, config.spec),
        )
    })
}

/// What the report shows about a local model, read from the model itself.
pub fn local_metadata(model: &LocalModel) -> ModelMetadata {
    let info = model.info();
    ModelMetadata {
        parameters: Some(parameter_count(info.parameters)),
        context_length: Some(info.context_length as u64),
        modalities: vec![Modality::Text],
        price: None,
        architecture: Some(info.architecture.clone()),
        dtype: Some(info.dtype.clone()),
        device: Some(info.device.clone()),
    }
}

/// "14.7B", "3.8B", "412.3K": as people write parameter counts.
pub fn parameter_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else {
        format!("{:.1}K", n / 1e3)
    }
}

/// Where requests go (hosted), or what besides the spec decides the answers (local): part of the
/// cache key.
fn endpoint(config: &ModelConfig) -> Result<Option<String>, ModelError> {
    let chosen = match &config.spec {
        ModelSpec::OpenAi { .. } => Some(
            config
                .base_url
                .clone()
                .or_else(|| std::env::var(OPENAI_BASE_URL_ENV).ok().filter(|u| !u.is_empty()))
                .unwrap_or_else(|| OPENAI_BASE_URL.to_string()),
        ),
        ModelSpec::OpenAiCompatible { .. } => match &config.base_url {
            Some(url) => Some(url.clone()),
            None => {
                return Err(ModelError::new(
                    ErrorKind::Config,
                    format!(
                        "model `{}` ({}) needs a base_url: set `base_url` in its [[models]] entry or pass --base-url",
                        config.id, config.spec
                    ),
                ))
            }
        },
        _ => return Ok(Some(config.local.cache_identity())),
    };
    Ok(chosen.map(|url| url.trim_end_matches('/').to_string()))
}

fn hosted(
    config: &ModelConfig,
    model_name: &str,
    base_url: &str,
    defaults: &Defaults,
    keys: &mut KeyPrompter,
) -> Result<Arc<dyn ChatModel>, ModelError> {
    let key_variable = match (&config.api_key_env, &config.spec) {
        (Some(variable), _) => Some(variable.clone()),
        (None, ModelSpec::OpenAi { .. }) => Some(OPENAI_KEY_ENV.to_string()),
        // Local servers (vLLM, Ollama, llama.cpp) usually need no key.
        (None, _) => None,
    };
    let api_key = key_variable
        .as_deref()
        .map(|variable| keys.key(variable, &config.id))
        .transpose()?;
    let client = OpenAiClient::new(ClientConfig {
        base_url: base_url.to_string(),
        model: model_name.to_string(),
        api_key,
        key_hint: key_variable,
        stream: config.stream,
        timeout: Duration::from_secs_f64(defaults.timeout_secs),
        retry: RetryPolicy {
            max_retries: defaults.retries,
            base_delay: Duration::from_secs_f64(defaults.retry_backoff_secs),
            max_delay: Duration::from_secs(30),
        },
    })
    .map_err(|e| ModelError::new(ErrorKind::Config, format!("model `{}`: {e}", config.id)))?;
    Ok(Arc::new(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: &str, base_url: Option<&str>) -> ModelConfig {
        let mut config = ModelConfig::from_spec(ModelSpec::parse(spec).unwrap());
        config.base_url = base_url.map(str::to_string);
        config
    }

    #[test]
    fn compatible_models_need_a_base_url() {
        let error = endpoint(&config("openai-compatible:llama3", None)).unwrap_err();
        assert!(error.message.contains("--base-url"), "{}", error.message);
        assert_eq!(
            endpoint(&config("openai-compatible:llama3", Some("http://h:1/v1/"))).unwrap(),
            Some("http://h:1/v1".to_string())
        );
    }

    #[tokio::test]
    async fn a_missing_local_model_says_what_is_missing() {
        let prepared = prepare(
            &config("local:/surely/not/here", None),
            &Defaults::default(),
            &mut KeyPrompter::new(false),
        )
        .await;
        let error = prepared.model.err().unwrap();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(
            error.message.contains("no such model folder"),
            "{}",
            error.message
        );
    }

    #[test]
    fn parameter_counts_read_like_model_cards() {
        assert_eq!(parameter_count(14_659_507_200), "14.7B");
        assert_eq!(parameter_count(412_300), "412.3K");
    }

    #[tokio::test]
    async fn a_missing_key_names_the_variable() {
        let mut spec = config("openai-compatible:x", Some("http://127.0.0.1:9/v1"));
        spec.api_key_env = Some("VERSUS_TEST_SURELY_UNSET_KEY".into());
        let prepared = prepare(&spec, &Defaults::default(), &mut KeyPrompter::new(false)).await;
        let error = prepared.model.err().unwrap();
        assert!(error
            .message
            .contains("VERSUS_TEST_SURELY_UNSET_KEY is not set"));
    }
}
