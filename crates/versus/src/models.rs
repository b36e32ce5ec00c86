//! Turns the suite's model entries into `ChatModel`s: hosted models get an HTTP client with their
//! endpoint and key, local models are loaded in-process (their metadata read from the model);
//! a model that cannot be built gets the reason, recorded on each of its cells.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use versus_api::{
    Api, ApiClient, AzureAuth, AzureOptions, ClientConfig, PoolClient, PoolEvent, PoolObserver,
    PoolSettings, ResponseLimits, RetryPolicy, OPENAI_BASE_URL,
};
use versus_core::redact::REDACTED;
use versus_core::{
    ChatModel, Defaults, ErrorKind, Modality, ModelConfig, ModelError, ModelMetadata, ModelSpec,
    OpenAiApi,
};
use versus_engine::{LoadOptions, LocalModel};

/// The environment variable OpenAI's own clients read the key from.
const OPENAI_KEY_ENV: &str = "OPENAI_API_KEY";
/// The variable Azure OpenAI's Entra ID token is read from; sent as a bearer token.
const AZURE_AD_TOKEN_ENV: &str = "AZURE_OPENAI_AD_TOKEN";

/// What versus knows of a hosted provider: where its API is, where its official clients read
/// another API root and the key from.
struct Provider {
    /// The API root when neither the suite nor the environment says; `None`: it must be given.
    default_base_url: Option<&'static str>,
    /// The variable the provider's own clients read another API root from.
    base_url_env: Option<&'static str>,
    /// The variables the key is read from, in the order the official client tries them; empty:
    /// the provider takes no key unless the suite names one (`api_key_env`).
    key_envs: &'static [&'static str],
}

/// The provider behind a hosted spec; `None` for local models.
fn provider(spec: &ModelSpec) -> Option<Provider> {
    Some(match spec {
        ModelSpec::OpenAi { .. } | ModelSpec::OpenAiResponses { .. } => Provider {
            default_base_url: Some(OPENAI_BASE_URL),
            base_url_env: Some("OPENAI_BASE_URL"),
            key_envs: &[OPENAI_KEY_ENV],
        },
        ModelSpec::OpenAiCompatible { .. } => Provider {
            default_base_url: None,
            base_url_env: None,
            key_envs: &[],
        },
        ModelSpec::Anthropic { .. } => Provider {
            default_base_url: Some(versus_api::ANTHROPIC_BASE_URL),
            base_url_env: Some("ANTHROPIC_BASE_URL"),
            key_envs: &["ANTHROPIC_API_KEY"],
        },
        // google-genai prefers GOOGLE_API_KEY when both are set; so does versus.
        ModelSpec::Gemini { .. } => Provider {
            default_base_url: Some(versus_api::GEMINI_BASE_URL),
            base_url_env: Some("GOOGLE_GEMINI_BASE_URL"),
            key_envs: &["GOOGLE_API_KEY", "GEMINI_API_KEY"],
        },
        ModelSpec::Azure { .. } => Provider {
            default_base_url: None,
            base_url_env: Some("AZURE_OPENAI_ENDPOINT"),
            key_envs: &["AZURE_OPENAI_API_KEY", AZURE_AD_TOKEN_ENV],
        },
        ModelSpec::Ollama { .. } => Provider {
            default_base_url: Some(versus_api::OLLAMA_BASE_URL),
            base_url_env: Some("OLLAMA_HOST"),
            key_envs: &[],
        },
        ModelSpec::HuggingFace { .. } | ModelSpec::LocalDir { .. } | ModelSpec::Gguf { .. } => {
            return None
        }
    })
}

/// A model ready to run, or the reason it cannot.
pub struct PreparedModel {
    pub config: ModelConfig,
    /// The API root requests go to (part of the cache key); `None` for local models.
    pub endpoint: Option<String>,
    pub model: Result<Arc<dyn ChatModel>, ModelError>,
    /// The same client, for its provider's batch API, when it has one versus uses (a pool's
    /// first endpoint).
    pub batch: Option<ApiClient>,
    /// How many endpoints share the model's requests (its pool; 1 for most models): the runner
    /// lets `concurrency` requests wait for each.
    pub endpoints: usize,
}

/// What the user allowed, on the command line, about where API keys go. A suite names the key's
/// variable and its destination, so a downloaded suite must not be able to send any variable
/// anywhere: these are the user's say.
#[derive(Debug, Clone, Default)]
pub struct KeyPolicy {
    /// Variables allowed to be sent as keys although their names do not look like key variables
    /// (`--allow-key-env`).
    pub allowed_variables: Vec<String>,
    /// Keys may go over plain http to hosts other than this machine (`--allow-insecure-http`).
    pub allow_insecure_http: bool,
}

impl KeyPolicy {
    pub fn from_args(args: &crate::cli::KeyArgs) -> KeyPolicy {
        KeyPolicy {
            allowed_variables: args.allow_key_env.clone(),
            allow_insecure_http: args.allow_insecure_http,
        }
    }

    /// Whether `variable` may be sent as a key for `spec`: the provider's own variable, a name
    /// ending in `_KEY` or `_TOKEN`, or one the user allowed.
    fn allows_variable(&self, variable: &str, spec: &ModelSpec) -> bool {
        let upper = variable.to_ascii_uppercase();
        provider(spec).is_some_and(|provider| provider.key_envs.contains(&variable))
            || ((upper.ends_with("_KEY") || upper.ends_with("_TOKEN"))
                && upper.len() > "_KEY".len())
            || self
                .allowed_variables
                .iter()
                .any(|allowed| allowed == variable)
    }
}

/// Keys asked for at the terminal during this process, by variable name, so each is asked once;
/// and the key policy, checked before any key is read.
#[derive(Default)]
pub struct KeyPrompter {
    entered: HashMap<String, String>,
    interactive: bool,
    /// Say where keys go (on stderr) when not to the provider's default host.
    announce: bool,
    policy: KeyPolicy,
    /// (variable, host) pairs already announced.
    announced: std::collections::HashSet<(String, String)>,
}

impl KeyPrompter {
    pub fn new(interactive: bool) -> KeyPrompter {
        KeyPrompter {
            entered: HashMap::new(),
            interactive: interactive && std::io::stdin().is_terminal(),
            announce: interactive,
            policy: KeyPolicy::default(),
            announced: std::collections::HashSet::new(),
        }
    }

    /// The same, under the user's key policy.
    pub fn with_policy(mut self, policy: KeyPolicy) -> KeyPrompter {
        self.policy = policy;
        self
    }

    /// Checks where `config`'s key would go before any key is read: the variable must look like
    /// a key variable (or be allowed), and a key never goes over plain http to another machine
    /// unless allowed. Says where it goes when that is not the provider's default host. `Ok`
    /// for local models and hosted ones without a key.
    pub fn check_route(&mut self, config: &ModelConfig) -> Result<(), ModelError> {
        if config.spec.is_local() {
            return Ok(());
        }
        let Ok(urls) = base_urls(config) else {
            return Ok(());
        };
        // Every endpoint of a pool: each URL with each key.
        let variables = key_variables(config);
        for url in &urls {
            for variable in variables.iter().flatten() {
                self.check_one_route(config, url, variable)?;
            }
        }
        Ok(())
    }

    /// `check_route` for one key variable sent to one API root.
    fn check_one_route(
        &mut self,
        config: &ModelConfig,
        base_url: &str,
        variable: &str,
    ) -> Result<(), ModelError> {
        let refuse = |message: String| ModelError::new(ErrorKind::Config, message);
        if !self.policy.allows_variable(variable, &config.spec) {
            return Err(refuse(format!(
                "model `{}`: api_key_env = \"{variable}\" does not look like an API key variable (the provider's own, or a name ending in _KEY or _TOKEN), so its value is not sent; if it does hold the key, pass --allow-key-env {variable}",
                config.id
            )));
        }
        let destination = versus_api::destination(base_url)
            .map_err(|e| refuse(format!("model `{}`: {e}", config.id)))?;
        if !destination.encrypted && !destination.loopback && !self.policy.allow_insecure_http {
            return Err(refuse(format!(
                "model `{}`: refusing to send the key in {variable} over plain http to {} (anyone on the way can read it); use an https base_url, or pass --allow-insecure-http",
                config.id, destination.host
            )));
        }
        let default_host = provider(&config.spec)
            .and_then(|provider| provider.default_base_url)
            .and_then(|url| versus_api::destination(url).ok())
            .is_some_and(|default| default.host == destination.host && destination.encrypted);
        if !default_host
            && self.announce
            && self
                .announced
                .insert((variable.to_string(), destination.host.clone()))
        {
            eprintln!(
                "note: the key in {variable} goes to {}{} (model `{}`)",
                destination.host,
                if destination.encrypted {
                    ""
                } else {
                    " over plain http"
                },
                config.id
            );
        }
        Ok(())
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
    let mut batch = None;
    let model = match &endpoint {
        Err(error) => Err(error.clone()),
        Ok(_) if !config.spec.is_local() => hosted(&config, defaults, keys).map(|hosted| {
            let batches = matches!(
                config.spec,
                ModelSpec::OpenAi { .. } | ModelSpec::Anthropic { .. } | ModelSpec::Gemini { .. }
            );
            batch = (batches && hosted.first.takes_batches()).then(|| hosted.first.clone());
            hosted.model
        }),
        Ok(_) => match load_local(&config).await {
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
        endpoints: config.endpoint_count(),
        config,
        model,
        batch,
    }
}

/// A model this process does not build (the planner of a shared run, a worker that does not
/// serve it): its config and endpoint, which plan its cells and key its cache, and `reason` as
/// the error a call would get.
pub fn unprepared(config: &ModelConfig, reason: String) -> PreparedModel {
    PreparedModel {
        config: config.clone(),
        endpoint: endpoint(config).unwrap_or(None),
        endpoints: config.endpoint_count(),
        model: Err(ModelError::new(ErrorKind::Config, reason)),
        batch: None,
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
        price_source: None,
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

/// The API root a hosted model's requests go to: the suite's `base_url` (an `azure:` model's
/// `endpoint`), else the provider's own variable (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`,
/// `AZURE_OPENAI_ENDPOINT`, `OLLAMA_HOST`, ...), else its default; trailing slashes dropped.
fn base_url(config: &ModelConfig) -> Result<String, ModelError> {
    let Some(provider) = provider(&config.spec) else {
        return Err(ModelError::new(
            ErrorKind::Config,
            format!("model `{}` ({}) runs in-process", config.id, config.spec),
        ));
    };
    let from_env = provider
        .base_url_env
        .and_then(|variable| std::env::var(variable).ok())
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .map(|url| {
            // OLLAMA_HOST is often `host:port` without a scheme, as Ollama itself reads it.
            if url.contains("://") {
                url
            } else {
                format!("http://{url}")
            }
        });
    let chosen = config
        .base_url
        .clone()
        .or(from_env)
        .or(provider.default_base_url.map(str::to_string));
    let Some(url) = chosen else {
        let (field, variable) = match config.spec {
            ModelSpec::Azure { .. } => ("an `endpoint`", " or set AZURE_OPENAI_ENDPOINT"),
            _ => ("a base_url", ""),
        };
        return Err(ModelError::new(
            ErrorKind::Config,
            format!(
                "model `{}` ({}) needs {field}: set it in its [[models]] entry or pass --base-url{variable}",
                config.id, config.spec
            ),
        ));
    };
    if url.contains(REDACTED) {
        return Err(ModelError::new(
            ErrorKind::Config,
            format!(
                "model `{}`: its base_url `{url}` was stored with its credentials removed; run the suite again with `versus run` (stored answers come from the cache) to call it with the whole URL",
                config.id
            ),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The API roots of a hosted model: its pool's `base_urls` when it lists them (each checked as
/// `base_url` is), else the one `base_url` resolves to.
fn base_urls(config: &ModelConfig) -> Result<Vec<String>, ModelError> {
    if config.base_urls.is_empty() {
        return Ok(vec![base_url(config)?]);
    }
    config
        .base_urls
        .iter()
        .map(|url| {
            if url.contains(REDACTED) {
                return Err(ModelError::new(
                    ErrorKind::Config,
                    format!(
                        "model `{}`: its base_urls entry `{url}` was stored with its credentials removed; run the suite again with `versus run` (stored answers come from the cache) to call it with the whole URL",
                        config.id
                    ),
                ));
            }
            Ok(url.trim().trim_end_matches('/').to_string())
        })
        .collect()
}

/// Where requests go (hosted), or what besides the spec decides the answers (local): part of the
/// cache key. For Azure, the API and its version too (the same deployment answers both). A pool
/// of several URLs is named as a pool, not by its replicas, unless `pool_in_cache_key` (then by
/// every URL, in order); keys are never part of it, so several keys on one URL key as that URL.
fn endpoint(config: &ModelConfig) -> Result<Option<String>, ModelError> {
    if config.spec.is_local() {
        return Ok(Some(config.local.cache_identity()));
    }
    let urls = base_urls(config)?;
    let base = match &urls[..] {
        [one] => one.clone(),
        _ if config.pool_in_cache_key => {
            let mut sorted = urls.clone();
            sorted.sort();
            format!("pool {}", sorted.join(" "))
        }
        _ => "pool".to_string(),
    };
    Ok(Some(
        match (&config.spec, config.api, &config.api_version) {
            (ModelSpec::Azure { .. }, api, version) => format!(
                "{base} api={} api-version={}",
                if api == Some(OpenAiApi::Responses) {
                    "responses"
                } else {
                    "chat"
                },
                version.as_deref().unwrap_or("v1")
            ),
            _ => base,
        },
    ))
}

/// The variable a hosted model's key is read from: the suite's `api_key_env`, else the first of
/// the provider's own variables that is set (the first of them when none is, to ask for it or
/// name it in the error); `None` when the model takes no key.
fn key_variable(config: &ModelConfig) -> Option<String> {
    if let Some(variable) = &config.api_key_env {
        return Some(variable.clone());
    }
    let candidates = provider(&config.spec)?.key_envs;
    candidates
        .iter()
        .find(|variable| std::env::var(variable).is_ok_and(|value| !value.trim().is_empty()))
        .or(candidates.first())
        .map(|variable| variable.to_string())
}

/// The key variables of a hosted model's endpoints: its pool's `api_key_envs` when it lists
/// them, else the one `key_variable` (`None`: no key).
fn key_variables(config: &ModelConfig) -> Vec<Option<String>> {
    if config.api_key_envs.is_empty() {
        vec![key_variable(config)]
    } else {
        config.api_key_envs.iter().cloned().map(Some).collect()
    }
}

/// The API a hosted model is asked through, with what it needs beyond its URL and key.
fn api_for(config: &ModelConfig, key_variable: Option<&str>) -> Api {
    match &config.spec {
        ModelSpec::OpenAiResponses { .. } => Api::Responses,
        ModelSpec::Anthropic { .. } => Api::Anthropic,
        ModelSpec::Gemini { .. } => Api::Gemini,
        ModelSpec::Ollama { .. } => Api::Ollama,
        ModelSpec::Azure { .. } => Api::Azure(AzureOptions {
            api_version: config.api_version.clone(),
            auth: if key_variable == Some(AZURE_AD_TOKEN_ENV) {
                AzureAuth::BearerToken
            } else {
                AzureAuth::ApiKey
            },
            api: config.api.unwrap_or(OpenAiApi::Chat),
        }),
        _ => Api::ChatCompletions,
    }
}

/// A hosted model ready to ask: one client, or a pool of them.
struct Hosted {
    model: Arc<dyn ChatModel>,
    /// The (first) endpoint's client, for the batch APIs.
    first: ApiClient,
}

/// The HTTP client of a hosted model (its API, API root, key, checked against the key policy
/// first, timeout, retries and response limits), or a `PoolClient` over one client per endpoint
/// when the model lists several URLs or keys.
fn hosted(
    config: &ModelConfig,
    defaults: &Defaults,
    keys: &mut KeyPrompter,
) -> Result<Hosted, ModelError> {
    let urls = base_urls(config)?;
    keys.check_route(config)?;
    let mut clients = Vec::new();
    for variable in key_variables(config) {
        let api_key = variable
            .as_deref()
            .map(|variable| keys.key(variable, &config.id))
            .transpose()?;
        for url in &urls {
            clients.push(client(
                config,
                defaults,
                url,
                api_key.clone(),
                variable.clone(),
            )?);
        }
    }
    let first = clients[0].clone();
    if clients.len() == 1 {
        return Ok(Hosted {
            model: Arc::new(first.clone()),
            first,
        });
    }
    let id = config.id.clone();
    // Said on stderr as the key notes are (not with --quiet).
    let observer: Option<PoolObserver> = keys.announce.then(|| {
        Arc::new(move |event: &PoolEvent| eprintln!("note: model `{id}`: {event}")) as PoolObserver
    });
    let settings = PoolSettings {
        concurrency: config.concurrency.unwrap_or(defaults.concurrency),
        requests_per_minute: config.requests_per_minute,
        tokens_per_minute: config.tokens_per_minute,
    };
    let pool = PoolClient::new(clients, settings, observer)
        .map_err(|e| ModelError::new(ErrorKind::Config, format!("model `{}`: {e}", config.id)))?;
    Ok(Hosted {
        model: Arc::new(pool),
        first,
    })
}

/// One endpoint's client: `base_url` with the key from `key_variable`.
fn client(
    config: &ModelConfig,
    defaults: &Defaults,
    base_url: &str,
    api_key: Option<String>,
    key_variable: Option<String>,
) -> Result<ApiClient, ModelError> {
    let api = api_for(config, key_variable.as_deref());
    ApiClient::for_api(
        api,
        ClientConfig {
            base_url: base_url.to_string(),
            model: config.spec.hosted_name().unwrap_or_default().to_string(),
            api_key,
            key_hint: key_variable,
            stream: config.stream,
            timeout: Duration::from_secs_f64(defaults.timeout_secs),
            retry: RetryPolicy {
                max_retries: defaults.retries,
                base_delay: Duration::from_secs_f64(defaults.retry_backoff_secs),
                max_delay: Duration::from_secs(30),
            },
            limits: ResponseLimits {
                max_body_bytes: usize::try_from(defaults.max_response_bytes).unwrap_or(usize::MAX),
                max_sse_line_bytes: usize::try_from(defaults.max_sse_line_bytes)
                    .unwrap_or(usize::MAX),
            },
        },
    )
    .map_err(|e| ModelError::new(ErrorKind::Config, format!("model `{}`: {e}", config.id)))
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
    fn a_pool_is_keyed_by_its_model_not_its_replicas() {
        let pool = |urls: &[&str], in_key: bool| {
            let mut model = config("openai-compatible:m", None);
            model.base_urls = urls.iter().map(|url| url.to_string()).collect();
            model.pool_in_cache_key = in_key;
            endpoint(&model).unwrap().unwrap()
        };
        assert_eq!(pool(&["http://a/v1", "http://b/v1/"], false), "pool");
        assert_eq!(pool(&["http://c/v1", "http://d/v1"], false), "pool");
        assert_eq!(
            pool(&["http://b/v1/", "http://a/v1"], true),
            "pool http://a/v1 http://b/v1"
        );
        // One URL is that URL, however many keys reach it.
        let mut keys = config("openai-compatible:m", Some("http://a/v1"));
        keys.api_key_envs = vec!["A_KEY".into(), "B_KEY".into()];
        assert_eq!(endpoint(&keys).unwrap().as_deref(), Some("http://a/v1"));
        assert_eq!(pool(&["http://a/v1"], true), "http://a/v1");
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

    #[test]
    fn keys_go_only_to_key_variables_and_never_over_plain_http_to_other_machines() {
        let mut keys = KeyPrompter::new(false);
        let mut route = |spec: &str, url: Option<&str>, variable: Option<&str>| {
            let mut model = config(spec, url);
            model.api_key_env = variable.map(str::to_string);
            keys.check_route(&model).map_err(|e| e.message)
        };
        assert!(route("openai:gpt-4o", None, None).is_ok());
        assert!(route("openai:gpt-4o", None, Some("GROQ_API_KEY")).is_ok());
        assert!(route(
            "openai-compatible:m",
            Some("https://h/v1"),
            Some("HF_TOKEN")
        )
        .is_ok());
        let home = route("openai:gpt-4o", None, Some("HOME")).unwrap_err();
        assert!(home.contains("--allow-key-env HOME"), "{home}");
        assert!(route("openai:gpt-4o", None, Some("_KEY")).is_err());
        let plain = route("openai:gpt-4o", Some("http://203.0.113.9/v1"), None).unwrap_err();
        assert!(plain.contains("--allow-insecure-http"), "{plain}");
        assert!(plain.contains("203.0.113.9"), "{plain}");
        assert!(route("openai:gpt-4o", Some("http://127.0.0.1:9/v1"), None).is_ok());
        // A model without a key may go anywhere.
        assert!(route("openai-compatible:m", Some("http://203.0.113.9/v1"), None).is_ok());

        let mut allowed = KeyPrompter::new(false).with_policy(KeyPolicy {
            allowed_variables: vec!["HOME".into()],
            allow_insecure_http: true,
        });
        let mut model = config("openai:gpt-4o", Some("http://203.0.113.9/v1"));
        model.api_key_env = Some("HOME".into());
        assert!(allowed.check_route(&model).is_ok());
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
