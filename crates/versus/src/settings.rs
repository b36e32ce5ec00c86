//! Settings for a run, resolved once: the suite (file or builtin) read and validated, the command
//! line's models, filters and overrides applied, and the files the suite names checked and read.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use versus_core::builtin::{builtin_suite, BUILTIN_SUITES};
use versus_core::suggest::closest;
use versus_core::{
    ContentPart, Defaults, GenerationParams, ModelConfig, ModelSpec, Suite, SuiteError, SuiteSource,
};

use crate::cli::{LocalArgs, OverrideArgs, RequestArgs, RunArgs, SamplingArgs};

/// A suite as read from disk or the binary, before the command line is applied.
pub struct LoadedSuite {
    pub suite: Suite,
    /// The suite's text, stored with the run so it can be reproduced.
    pub text: String,
    /// Where it came from: a path, or `builtin:NAME`.
    pub origin: String,
    /// The folder relative paths in the suite are resolved against.
    pub base_dir: PathBuf,
}

/// Everything a run needs to know, resolved from the suite and the command line.
pub struct RunSettings {
    pub loaded: LoadedSuite,
    /// Generation parameters from the command line, which win over suite, model and task.
    pub overrides: GenerationParams,
    /// Images per task (same order as `loaded.suite.tasks`), read and encoded once.
    pub task_images: Vec<Vec<ContentPart>>,
    pub no_cache: bool,
    pub reuse: bool,
    pub fresh: bool,
    /// Where the user allows keys to go (`--allow-key-env`, `--allow-insecure-http`).
    pub keys: crate::models::KeyPolicy,
    /// `--batch-api`: how often to poll the providers' batches; `None`: no new batches (batches
    /// an interrupted run submitted are still collected).
    pub batch_poll: Option<std::time::Duration>,
    /// `--workers 0`: record the run for `versus worker` processes instead of asking here.
    pub shared: bool,
}

/// An error in what the user asked for (exit code 2), as opposed to a failure while running.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<SuiteError> for UsageError {
    fn from(error: SuiteError) -> UsageError {
        UsageError(error.to_string())
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub fn load_suite(path: Option<&Path>, builtin: Option<&str>) -> anyhow::Result<LoadedSuite> {
    let (text, origin, base_dir) = match (path, builtin) {
        (Some(path), _) => {
            let bytes = std::fs::read(path).map_err(|e| {
                usage(format!(
                    "cannot read the suite file {}: {e}",
                    path.display()
                ))
            })?;
            let text = SuiteSource::decode(&path.display().to_string(), &bytes)
                .map_err(|e| anyhow::Error::from(UsageError::from(e)))?;
            let base_dir = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            (text, path.display().to_string(), base_dir)
        }
        (None, Some(name)) => {
            let Some(text) = builtin_suite(name) else {
                let names: Vec<&str> = BUILTIN_SUITES.iter().map(|(n, _)| *n).collect();
                let hint = closest(name, names.iter().copied())
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(usage(format!(
                    "there is no builtin suite `{name}` (builtin suites: {}){hint}",
                    names.join(", ")
                )));
            };
            (
                text.to_string(),
                format!("builtin:{name}"),
                PathBuf::from("."),
            )
        }
        (None, None) => {
            return Err(usage(
                "name a suite: `versus run my-suite.toml`, or `versus run --builtin seed`",
            ))
        }
    };
    let suite = Suite::parse(&SuiteSource {
        origin: &origin,
        text: &text,
    })
    .map_err(|e| anyhow::Error::from(UsageError::from(e)))?;
    Ok(LoadedSuite {
        suite,
        text,
        origin,
        base_dir,
    })
}

/// A model argument's optional `ID=` and its spec: `ID=SPEC`, where ID has no `:` (specs always
/// do, so `openai:a=b` stays a spec). Every flag that names a model reads it this way.
pub fn split_model_arg(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((id, spec)) if !id.contains(':') && !id.is_empty() => (Some(id), spec),
        _ => (None, arg),
    }
}

/// Parses `SPEC` or `ID=SPEC` given to `flag` (`--model`, `--add-model`, or the positional model
/// of `versus chat` and `versus model inspect`), which names it in errors.
pub fn model_from_arg(
    flag: &str,
    arg: &str,
    base_url: Option<&str>,
) -> anyhow::Result<ModelConfig> {
    let (id, spec_text) = split_model_arg(arg);
    let spec = ModelSpec::parse(spec_text).map_err(|e| usage(format!("{flag} {arg}: {e}")))?;
    let mut config = ModelConfig::from_spec(spec);
    if let Some(id) = id {
        config.id = id.to_string();
    }
    config.base_url = base_url.map(str::to_string);
    Ok(config)
}

/// A `--model`/`--add-model` of `versus run` with its `--base-url`s: one is the model's
/// `base_url`, several its endpoint pool's `base_urls`.
fn model_with_base_urls(
    flag: &str,
    arg: &str,
    suite_models: Option<&[ModelConfig]>,
    base_urls: &[String],
) -> anyhow::Result<ModelConfig> {
    let single = match base_urls {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let mut config = match suite_models {
        Some(models) => suite_or_new_model(arg, models, single)?,
        None => model_from_arg(flag, arg, single)?,
    };
    let from_suite = suite_models.is_some_and(|models| models.iter().any(|m| m.id == arg.trim()));
    if base_urls.len() > 1 && !from_suite {
        if config.spec.is_local() {
            return Err(usage(format!(
                "{flag} {arg}: a local model takes no --base-url"
            )));
        }
        config.base_urls = base_urls.to_vec();
    }
    Ok(config)
}

/// A `--model` argument of `versus run`: a model id of the suite (its entry, as the suite
/// defines it, so that `--model ID` runs only some of the suite's models), else `SPEC` or
/// `ID=SPEC`, as `--judge` takes it.
fn suite_or_new_model(
    arg: &str,
    suite_models: &[ModelConfig],
    base_url: Option<&str>,
) -> anyhow::Result<ModelConfig> {
    if let Some(model) = suite_models.iter().find(|m| m.id == arg.trim()) {
        return Ok(model.clone());
    }
    // Every spec has a `:`; a word without one was meant as a model id.
    if !arg.contains(':') && !suite_models.is_empty() {
        if let Err(error) = ModelSpec::parse(arg) {
            let ids: Vec<&str> = suite_models.iter().map(|m| m.id.as_str()).collect();
            let hint = closest(arg, ids.iter().copied())
                .map(|id| format!("; did you mean `{id}`?"))
                .unwrap_or_default();
            return Err(usage(format!(
                "--model {arg}: neither a model id of the suite ({}) nor a model spec: {error}{hint}",
                ids.join(", ")
            )));
        }
    }
    model_from_arg("--model", arg, base_url)
}

impl RunSettings {
    pub fn resolve(args: &RunArgs) -> anyhow::Result<RunSettings> {
        let mut loaded = load_suite(args.suite.as_deref(), args.builtin.as_deref())?;
        let suite = &mut loaded.suite;

        if !args.models.is_empty() {
            suite.models = args
                .models
                .iter()
                .map(|arg| {
                    model_with_base_urls("--model", arg, Some(&suite.models), &args.base_urls)
                })
                .collect::<anyhow::Result<_>>()?;
        }
        for arg in &args.add_models {
            let model = model_with_base_urls("--add-model", arg, None, &args.base_urls)?;
            match suite.models.iter_mut().find(|m| m.id == model.id) {
                Some(existing) => *existing = model,
                None => suite.models.push(model),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for model in &suite.models {
            if !seen.insert(model.id.as_str()) {
                return Err(usage(format!(
                    "two models are called `{}`; name them with ID=SPEC, e.g. --model mine={}",
                    model.id, model.spec
                )));
            }
        }
        if suite.models.is_empty() {
            return Err(usage(format!(
                "{} names no models: add [[models]] to it or pass --model SPEC (e.g. --model openai:gpt-4o-mini)",
                loaded.origin
            )));
        }

        for model in suite.models.iter_mut().filter(|m| m.spec.is_local()) {
            apply_local_args(model, &args.local);
        }
        filter_tasks(suite, &args.tasks, &args.categories)?;
        apply_runtime_overrides(suite, &args.overrides)?;
        let overrides = sampling_params(&args.overrides.sampling)?;
        check_parameter_support(suite, &overrides)?;
        let task_images = read_task_files(&mut loaded, args.grading.allow_outside_files)?;
        let shared = shared(args, &loaded)?;
        Ok(RunSettings {
            loaded,
            overrides,
            task_images,
            no_cache: args.no_cache,
            reuse: args.reuse,
            fresh: args.fresh,
            keys: crate::models::KeyPolicy::from_args(&args.keys),
            batch_poll: batch_poll(args)?,
            shared,
        })
    }
}

/// Whether `--workers` shares the run with workers. Only 0 is accepted (this process asks
/// nothing), and a task's image files are read here, where the suite is, so such a suite cannot
/// be shared yet (images given by URL can).
fn shared(args: &RunArgs, loaded: &LoadedSuite) -> anyhow::Result<bool> {
    match args.workers {
        None => Ok(false),
        Some(0) => {
            let with_files = loaded.suite.tasks.iter().find(|task| {
                task.images.iter().any(|image| {
                    !(image.path.starts_with("http://") || image.path.starts_with("https://"))
                })
            });
            match with_files {
                Some(task) => Err(UsageError(format!(
                    "--workers 0: task `{}` has image files, which workers cannot read; give \
                     its images as URLs, or run without --workers",
                    task.id
                ))
                .into()),
                None => Ok(true),
            }
        }
        Some(workers) => Err(UsageError(format!(
            "--workers {workers}: only --workers 0 is supported; start `versus worker` \
             processes to answer the cells"
        ))
        .into()),
    }
}

/// How often `--batch-api` polls (`--batch-poll`, default 30 s, at least 10 ms).
fn batch_poll(args: &RunArgs) -> anyhow::Result<Option<std::time::Duration>> {
    if !args.batch_api {
        return Ok(None);
    }
    let seconds = args.batch_poll.unwrap_or(30.0);
    if !(0.01..=3600.0).contains(&seconds) {
        return Err(usage(format!(
            "--batch-poll {seconds}: must be between 0.01 and 3600 seconds"
        )));
    }
    Ok(Some(std::time::Duration::from_secs_f64(seconds)))
}

/// Refuses, before any model is called, a parameter a model's API does not take once the command
/// line has had its say (`--seed` for an `anthropic:` model, a suite's `[defaults] seed` for a
/// model added with `--model`); the suite's own mistakes were reported at its lines already.
fn check_parameter_support(suite: &Suite, overrides: &GenerationParams) -> anyhow::Result<()> {
    for model in &suite.models {
        let Some(api) = model.wire_api() else {
            continue;
        };
        for task in &suite.tasks {
            let params = suite
                .defaults
                .params
                .overlaid(&model.params)
                .overlaid(&task.params)
                .overlaid(overrides);
            let Some(problem) = api.check(&params) else {
                continue;
            };
            let param = problem.param;
            let origin = match param.flag() {
                Some(flag) if param.is_set(overrides) => format!("set by {flag}"),
                _ if param.is_set(&task.params) => format!("set by task `{}`", task.id),
                _ if param.is_set(&model.params) => "set on the model".to_string(),
                _ => "set in the suite's [defaults]".to_string(),
            };
            return Err(usage(format!(
                "model `{}` ({}): {} (`{}` {origin})\n  help: {}",
                model.id,
                model.spec,
                problem.reason,
                param.name(),
                versus_core::suite::parameter_help(api, param)
            )));
        }
    }
    Ok(())
}

/// Applies `--dtype`, `--quantize`, `--device` and `--force` to a local model.
pub fn apply_local_args(model: &mut ModelConfig, args: &LocalArgs) {
    if let Some(dtype) = args.dtype {
        model.local.dtype = dtype;
    }
    if let Some(quantize) = args.quantize {
        model.local.quantize = Some(quantize);
    }
    if let Some(device) = args.device {
        model.local.device = device;
    }
    model.local.force |= args.force;
    if let Some(batch) = args.batch {
        model.local.batch = Some(batch as usize);
    }
}

fn filter_tasks(suite: &mut Suite, ids: &[String], categories: &[String]) -> anyhow::Result<()> {
    for id in ids {
        if !suite.tasks.iter().any(|t| &t.id == id) {
            let hint = closest(id, suite.tasks.iter().map(|t| t.id.as_str()))
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(usage(format!(
                "--task {id}: the suite has no such task{hint}"
            )));
        }
    }
    for category in categories {
        if !suite.tasks.iter().any(|t| &t.category == category) {
            let mut known: Vec<&str> = suite.tasks.iter().map(|t| t.category.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(usage(format!(
                "--category {category}: no task has this category (categories: {})",
                known.join(", ")
            )));
        }
    }
    suite.tasks.retain(|task| {
        (ids.is_empty() || ids.contains(&task.id))
            && (categories.is_empty() || categories.contains(&task.category))
    });
    // Each filter matches something on its own, but together they can still exclude every task:
    // that is a mistake to report, not an empty run to record.
    if suite.tasks.is_empty() {
        return Err(usage(format!(
            "--task {} and --category {} together select no task: none of those tasks has those categories",
            ids.join(", --task "),
            categories.join(", --category ")
        )));
    }
    Ok(())
}

/// The generation parameters `--temperature`, `--top-p`, `--max-tokens`, `--seed`, `--top-k`,
/// `--min-p` and `--repetition-penalty` ask for, checked: `versus run` layers them over the
/// suite's, `versus chat` sends them as they are.
pub fn sampling_params(args: &SamplingArgs) -> anyhow::Result<GenerationParams> {
    if let Some(t) = args.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(usage(format!("--temperature {t}: must be between 0 and 2")));
        }
    }
    if let Some(p) = args.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(usage(format!("--top-p {p}: must be between 0 and 1")));
        }
    }
    if args.max_tokens == Some(0) {
        return Err(usage("--max-tokens must be at least 1"));
    }
    Ok(GenerationParams {
        temperature: args.temperature,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        seed: args.seed,
        stop: None,
        top_k: args.top_k,
        min_p: args.min_p,
        repetition_penalty: args.repetition_penalty,
        thinking_budget: None,
        reasoning_effort: None,
    })
}

/// Applies `--timeout` and `--retries` to the defaults every request is sent with.
pub fn apply_request_args(defaults: &mut Defaults, args: &RequestArgs) -> anyhow::Result<()> {
    if let Some(secs) = args.timeout {
        if secs.is_nan() || secs <= 0.0 {
            return Err(usage("--timeout must be a positive number of seconds"));
        }
        defaults.timeout_secs = secs;
    }
    if let Some(n) = args.retries {
        if n > versus_core::suite::MAX_RETRIES {
            return Err(usage(format!(
                "--retries {n}: must be at most {}",
                versus_core::suite::MAX_RETRIES
            )));
        }
        defaults.retries = n;
    }
    let (least, most) = versus_core::suite::RESPONSE_LIMIT_RANGE;
    for (flag, value, field) in [
        (
            "--max-response-bytes",
            args.max_response_bytes,
            &mut defaults.max_response_bytes,
        ),
        (
            "--max-sse-line-bytes",
            args.max_sse_line_bytes,
            &mut defaults.max_sse_line_bytes,
        ),
    ] {
        if let Some(bytes) = value {
            if !(least..=most).contains(&bytes) {
                return Err(usage(format!(
                    "{flag} {bytes}: must be between {least} and {most}"
                )));
            }
            *field = bytes;
        }
    }
    Ok(())
}

fn apply_runtime_overrides(suite: &mut Suite, args: &OverrideArgs) -> anyhow::Result<()> {
    let defaults = &mut suite.defaults;
    if let Some(n) = args.concurrency {
        if n == 0 {
            return Err(usage("--concurrency must be at least 1"));
        }
        defaults.concurrency = n;
        for model in &mut suite.models {
            model.concurrency = None;
        }
    }
    if let Some(n) = args.samples {
        if !(1..=versus_core::suite::MAX_SAMPLES).contains(&n) {
            return Err(usage(format!(
                "--samples {n}: must be between 1 and {}",
                versus_core::suite::MAX_SAMPLES
            )));
        }
        // The command line wins over the suite, its models and its tasks.
        defaults.samples = n;
        for model in &mut suite.models {
            model.samples = None;
        }
        for task in &mut suite.tasks {
            task.samples = None;
        }
    }
    if let Some(n) = args.max_concurrency {
        if n == 0 {
            return Err(usage("--max-concurrency must be at least 1"));
        }
        defaults.max_concurrency = n;
    }
    apply_request_args(defaults, &args.requests)
}

/// Checks every file the suite names, reads reference files into their tasks and encodes images
/// as data URLs (URLs are passed through). Errors point at the suite line naming the file.
fn read_task_files(
    loaded: &mut LoadedSuite,
    allow_outside: bool,
) -> anyhow::Result<Vec<Vec<ContentPart>>> {
    let source = SuiteSource {
        origin: &loaded.origin,
        text: &loaded.text,
    };
    let mut all_images = Vec::with_capacity(loaded.suite.tasks.len());
    for task in &mut loaded.suite.tasks {
        let mut images = Vec::new();
        for image in &task.images {
            if image.path.starts_with("http://") || image.path.starts_with("https://") {
                images.push(ContentPart::Image {
                    url: image.path.clone(),
                    source: Some(image.path.clone()),
                });
                continue;
            }
            let path = inside_suite_folder(&loaded.base_dir, &image.path, allow_outside).map_err(
                |reason| {
                    UsageError::from(source.error_at_location(
                        image.location,
                        "images",
                        format!("task `{}`: {reason}", task.id),
                    ))
                },
            )?;
            let mime = image_mime(&path).ok_or_else(|| {
                UsageError::from(source.error_at_location(
                    image.location,
                    "images",
                    format!(
                        "task `{}`: `{}` is not a PNG, JPEG, GIF or WebP file",
                        task.id, image.path
                    ),
                ))
            })?;
            let bytes = std::fs::read(&path).map_err(|e| {
                UsageError::from(source.error_at_location(
                    image.location,
                    "images",
                    format!(
                        "task `{}`: cannot read image {}: {e}",
                        task.id,
                        path.display()
                    ),
                ))
            })?;
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            images.push(ContentPart::Image {
                url: format!("data:{mime};base64,{data}"),
                source: Some(image.path.clone()),
            });
        }
        if let Some(file) = &task.reference_file {
            let path = inside_suite_folder(&loaded.base_dir, &file.path, allow_outside).map_err(
                |reason| {
                    UsageError::from(source.error_at_location(
                        file.location,
                        "reference_file",
                        format!("task `{}`: {reason}", task.id),
                    ))
                },
            )?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                UsageError::from(source.error_at_location(
                    file.location,
                    "reference_file",
                    format!("task `{}`: cannot read {}: {e}", task.id, path.display()),
                ))
            })?;
            task.reference = Some(text);
        }
        all_images.push(images);
    }
    Ok(all_images)
}

/// A file a suite names, resolved inside the suite's folder: an absolute path, a `..` or a
/// symbolic link that leads out of the folder is refused unless the user passed
/// `--allow-outside-files` (a downloaded suite must not read `/etc/passwd` into a report).
pub fn inside_suite_folder(
    base_dir: &Path,
    named: &str,
    allow_outside: bool,
) -> Result<PathBuf, String> {
    let path = base_dir.join(named);
    if allow_outside {
        return Ok(path);
    }
    let refused = |how: &str| {
        format!(
            "`{named}` {how} the suite's folder ({}); a suite may name files inside its own folder only: pass --allow-outside-files to allow it",
            base_dir.display()
        )
    };
    let leaves = Path::new(named).components().any(|part| {
        matches!(
            part,
            std::path::Component::ParentDir
                | std::path::Component::RootDir
                | std::path::Component::Prefix(_)
        )
    });
    if leaves {
        return Err(refused("is outside"));
    }
    // A symbolic link inside the folder may still point out of it.
    if let (Ok(real), Ok(root)) = (path.canonicalize(), base_dir.canonicalize()) {
        if !real.starts_with(&root) {
            return Err(refused("leads (through a symbolic link) outside"));
        }
    }
    Ok(path)
}

fn image_mime(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_args_take_an_optional_id() {
        let plain = model_from_arg("--model", "openai:gpt-4o-mini", None).unwrap();
        assert_eq!(plain.id, "gpt-4o-mini");
        let named = model_from_arg(
            "--model",
            "mine=openai-compatible:llama3",
            Some("http://h/v1"),
        )
        .unwrap();
        assert_eq!(named.id, "mine");
        assert_eq!(named.base_url.as_deref(), Some("http://h/v1"));
        let error = model_from_arg("--add-model", "nonsense", None).unwrap_err();
        assert!(
            error.to_string().starts_with("--add-model nonsense: "),
            "{error}"
        );
    }

    #[test]
    fn several_base_urls_make_a_pool_of_a_command_line_model() {
        let urls = ["http://a/v1".to_string(), "http://b/v1".to_string()];
        let pooled =
            model_with_base_urls("--add-model", "openai-compatible:m", None, &urls).unwrap();
        assert_eq!((pooled.base_url, pooled.base_urls), (None, urls.to_vec()));
        let single =
            model_with_base_urls("--add-model", "openai-compatible:m", None, &urls[..1]).unwrap();
        assert_eq!(single.base_url.as_deref(), Some("http://a/v1"));
        assert!(single.base_urls.is_empty());
        // A model of the suite keeps its own endpoints.
        let mut suite_model = ModelConfig::from_spec(ModelSpec::parse("openai:gpt-4o").unwrap());
        suite_model.base_url = Some("https://own/v1".into());
        let kept =
            model_with_base_urls("--model", "gpt-4o", Some(&[suite_model.clone()]), &urls).unwrap();
        assert_eq!(kept, suite_model);
        let local = model_with_base_urls("--add-model", "local:./m", None, &urls).unwrap_err();
        assert!(local.to_string().contains("takes no --base-url"), "{local}");
    }

    #[test]
    fn suite_files_stay_inside_the_suite_folder() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("suite");
        std::fs::create_dir_all(base.join("refs")).unwrap();
        std::fs::write(base.join("refs/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        assert!(inside_suite_folder(&base, "refs/a.txt", false).is_ok());
        assert!(inside_suite_folder(&base, "./refs/../refs/a.txt", false).is_err());
        for outside in ["/etc/passwd", "../secret.txt"] {
            let error = inside_suite_folder(&base, outside, false).unwrap_err();
            assert!(error.contains("--allow-outside-files"), "{error}");
            assert!(inside_suite_folder(&base, outside, true).is_ok());
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), base.join("link.txt"))
                .unwrap();
            let error = inside_suite_folder(&base, "link.txt", false).unwrap_err();
            assert!(error.contains("symbolic link"), "{error}");
        }
    }

    #[test]
    fn builtin_names_are_checked() {
        let err = load_suite(None, Some("sed")).err().unwrap().to_string();
        assert!(err.contains("did you mean `seed`"), "{err}");
        assert!(load_suite(None, Some("seed")).is_ok());
    }
}
