//! Turns the suite's model entries into `ChatModel`s: hosted models get an HTTP client with their
//! endpoint and key; a model that cannot be built gets the reason, recorded on each of its cells.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use versus_api::{ClientConfig, OpenAiClient, RetryPolicy, OPENAI_BASE_URL};
use versus_core::{ChatModel, Defaults, ErrorKind, ModelConfig, ModelError, ModelSpec};

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

pub fn prepare(config: &ModelConfig, defaults: &Defaults, keys: &mut KeyPrompter) -> PreparedModel {
    let endpoint = endpoint(config);
    let model = match (&config.spec, &endpoint) {
        (_, Err(error)) => Err(error.clone()),
        (ModelSpec::OpenAi { model }, Ok(Some(base_url)))
        | (ModelSpec::OpenAiCompatible { model }, Ok(Some(base_url))) => {
            hosted(config, model, base_url, defaults, keys)
        }
        (spec, _) => Err(ModelError::new(
            ErrorKind::Config,
            format!(
                "model `{}` ({spec}) runs in-process, and this build of versus has no local engine yet; use a hosted or openai-compatible model",
                config.id
            ),
        )),
    };
    PreparedModel {
        config: config.clone(),
        endpoint: endpoint.unwrap_or(None),
        model,
    }
}

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
        _ => None,
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

    #[test]
    fn local_models_explain_that_the_engine_is_missing() {
        let prepared = prepare(
            &config("hf:microsoft/phi-4", None),
            &Defaults::default(),
            &mut KeyPrompter::new(false),
        );
        let error = prepared.model.err().unwrap();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("local engine"));
    }

    #[test]
    fn a_missing_key_names_the_variable() {
        let mut spec = config("openai-compatible:x", Some("http://127.0.0.1:9/v1"));
        spec.api_key_env = Some("VERSUS_TEST_SURELY_UNSET_KEY".into());
        let prepared = prepare(&spec, &Defaults::default(), &mut KeyPrompter::new(false));
        let error = prepared.model.err().unwrap();
        assert!(error
            .message
            .contains("VERSUS_TEST_SURELY_UNSET_KEY is not set"));
    }
}
