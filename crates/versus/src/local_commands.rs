//! The commands around single models: `versus chat` (one streamed generation), `versus model
//! inspect`, `versus model tiny`, `versus demo` (the offline end-to-end run) and `versus login`.

use crate::exit::ExitStatus;
use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::{bail, Context};
use versus_core::builtin::SEED;
use versus_core::{ChatModel, ChatRequest, Defaults, GenerationParams, Message};
use versus_engine::tiny::{write_tiny_model, TinyArch};

use crate::cli::{
    ChatArgs, DemoArgs, Hub, InspectArgs, ListFormat, LoginArgs, RunArgs, TinyArchArg, TinyArgs,
};
use crate::models::{self, KeyPrompter};
use crate::settings::{
    apply_local_args, apply_request_args, model_from_arg, sampling_params, UsageError,
};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn chat(args: &ChatArgs, quiet: bool) -> anyhow::Result<ExitStatus> {
    let mut config = model_from_arg("model", &args.spec, args.base_url.as_deref())?;
    apply_local_args(&mut config, &args.local);
    for pair in &args.template_vars {
        let Some((name, value)) = pair.split_once('=') else {
            bail!(UsageError(format!(
                "--template-var {pair}: expected NAME=VALUE"
            )));
        };
        config
            .local
            .chat_template_kwargs
            .insert(name.to_string(), serde_json::Value::from(value));
    }
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(args.prompt.clone()));
    let request = ChatRequest {
        messages,
        params: GenerationParams {
            stop: (!args.stop.is_empty()).then(|| args.stop.clone()),
            ..sampling_params(&args.sampling)?
        },
    };
    if let Some(problem) = config.wire_api().and_then(|api| api.check(&request.params)) {
        let flag = problem.param.flag().unwrap_or("--stop");
        bail!(UsageError(format!(
            "{}: {} (`{}` set by {flag})",
            config.spec,
            problem.reason,
            problem.param.name()
        )));
    }
    let mut defaults = Defaults::default();
    apply_request_args(&mut defaults, &args.requests)?;
    runtime()?.block_on(async {
        if config.spec.is_local() && !quiet {
            eprintln!("loading {}...", config.spec);
        }
        let mut keys = KeyPrompter::new(true).with_policy(models::KeyPolicy::from_args(&args.keys));
        let prepared = models::prepare(&config, &defaults, &mut keys).await;
        let model: Arc<dyn ChatModel> = prepared.model.map_err(anyhow::Error::from)?;
        let mut stdout = std::io::stdout();
        let completion = model
            .complete(&request, &mut |piece| {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            })
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.spec))?;
        println!();
        if !quiet {
            let tokens = completion
                .usage
                .map(|u| {
                    format!(
                        "{} prompt + {} answer tokens",
                        u.prompt_tokens, u.completion_tokens
                    )
                })
                .unwrap_or_else(|| "tokens not reported".into());
            let rate = completion
                .usage
                .and_then(|u| completion.timings.tokens_per_second(u.completion_tokens))
                .map(|r| format!(", {r:.1} tokens/s"))
                .unwrap_or_default();
            let ttft = completion
                .timings
                .ttft_ms
                .map(|t| format!(", first token {:.2} s", t / 1000.0))
                .unwrap_or_default();
            eprintln!(
                "[{tokens}, {:.2} s{ttft}{rate}, finish: {}]",
                completion.timings.latency_ms / 1000.0,
                completion.finish_reason.as_str()
            );
        }
        Ok(ExitStatus::Success)
    })
}

pub fn inspect(args: &InspectArgs) -> anyhow::Result<ExitStatus> {
    // `ID=SPEC` is accepted as everywhere a model is named; the ID names nothing here.
    let mut config = model_from_arg("model", &args.spec, None)?;
    if !config.spec.is_local() {
        bail!(UsageError(format!(
            "`{}` is hosted; `versus model inspect` reads local models (hf:, local:, gguf:)",
            config.spec
        )));
    }
    apply_local_args(&mut config, &args.local);
    let model = runtime()?
        .block_on(models::load_local(&config))
        .map_err(anyhow::Error::from)?;
    let info = model.info();
    let text = match args.format {
        ListFormat::Json => serde_json::to_string_pretty(info)? + "\n",
        ListFormat::Table => {
            let rows = [
                ("model", info.name.clone()),
                ("architecture", info.architecture.clone()),
                (
                    "parameters",
                    format!(
                        "{} ({})",
                        models::parameter_count(info.parameters),
                        info.parameters
                    ),
                ),
                ("dtype", info.dtype.clone()),
                ("device", info.device.clone()),
                ("context length", info.context_length.to_string()),
                (
                    "layers / hidden / heads / kv heads",
                    format!(
                        "{} / {} / {} / {}",
                        info.layers, info.hidden_size, info.heads, info.kv_heads
                    ),
                ),
                ("vocabulary", info.vocab_size.to_string()),
                (
                    "bos token",
                    info.bos_token.clone().unwrap_or_else(|| "–".into()),
                ),
                (
                    "eos token",
                    info.eos_token.clone().unwrap_or_else(|| "–".into()),
                ),
                (
                    "stop token ids",
                    info.stop_token_ids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ];
            let mut text = String::new();
            for (name, value) in rows {
                text.push_str(&format!("{name:<36} {value}\n"));
            }
            match &info.chat_template {
                Some(template) => text.push_str(&format!("chat template:\n{template}\n")),
                None => text.push_str("chat template: none\n"),
            }
            text
        }
    };
    crate::commands::write_output(None, &text)?;
    Ok(ExitStatus::Success)
}

fn tiny_arch(arch: TinyArchArg) -> TinyArch {
    match arch {
        TinyArchArg::Phi3 => TinyArch::Phi3,
        TinyArchArg::Llama => TinyArch::Llama,
        TinyArchArg::Qwen2 => TinyArch::Qwen2,
    }
}

pub fn tiny(args: &TinyArgs, quiet: bool) -> anyhow::Result<ExitStatus> {
    write_tiny_model(&args.out, tiny_arch(args.arch), args.seed)
        .with_context(|| format!("cannot write a tiny model to {}", args.out.display()))?;
    if !quiet {
        eprintln!(
            "wrote a tiny {:?} model to {} (use it as local:{})",
            args.arch,
            args.out.display(),
            args.out.display()
        );
    }
    Ok(ExitStatus::Success)
}

/// The offline end-to-end run: two tiny models, the seed suite, the store, the report.
pub fn demo(
    db: &versus_store::Database,
    args: &DemoArgs,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    let models_dir = args.dir.join("models");
    let tiny_models = [
        ("tiny-phi3", TinyArch::Phi3),
        ("tiny-qwen2", TinyArch::Qwen2),
    ];
    let mut model_args = Vec::new();
    for (name, arch) in tiny_models {
        let dir = models_dir.join(name);
        if !dir.join("model.safetensors").is_file() {
            write_tiny_model(&dir, arch, 0)
                .with_context(|| format!("cannot write a tiny model to {}", dir.display()))?;
        }
        model_args.push(format!("{name}=local:{}", dir.display()));
    }
    let suite_path = args.dir.join("seed.toml");
    crate::files::write_atomically(&suite_path, SEED.as_bytes())?;
    let run_args = RunArgs {
        suite: Some(suite_path),
        builtin: None,
        models: model_args,
        add_models: Vec::new(),
        base_urls: Vec::new(),
        tasks: Vec::new(),
        categories: Vec::new(),
        no_cache: false,
        reuse: false,
        fresh: false,
        overrides: crate::cli::OverrideArgs {
            sampling: crate::cli::SamplingArgs {
                max_tokens: Some(args.max_tokens),
                ..Default::default()
            },
            ..Default::default()
        },
        local: Default::default(),
        grading: Default::default(),
        keys: Default::default(),
        no_score: false,
        batch_api: false,
        batch_poll: None,
        workers: None,
        wait: false,
    };
    let code = crate::commands::run(db, quiet, &run_args)?;
    let store = crate::commands::open_store(db)?;
    let report = crate::report::build(&store, crate::commands::chosen_run(&store, None)?)?;
    let markdown_path = args.dir.join("report.md");
    let html_path = args.dir.join("report.html");
    for (path, text) in [
        (&markdown_path, crate::report::markdown::render(&report)),
        (&html_path, crate::report::html::render(&report)),
    ] {
        crate::files::write_atomically(path, text.as_bytes())?;
    }
    // The tiny models have random weights: their answers are noise by construction, and a reader
    // of the report should not mistake them for a judgement of Phi-3 or Qwen2.
    println!(
        "note: the demo's models have random weights, so their answers are gibberish; \
         the demo shows the machinery (run, cache, scores, verdicts, report), not model quality"
    );
    println!("report: {}", markdown_path.display());
    println!("html report: {}", html_path.display());
    println!("browse and vote: {}", view_hint(db));
    Ok(code)
}

/// The command that opens the viewer on the demo's database.
fn view_hint(db: &versus_store::Database) -> String {
    format!("versus{} view", crate::commands::db_flag(db))
}

pub fn login(args: &LoginArgs) -> anyhow::Result<ExitStatus> {
    match args.hub {
        Hub::Hf => {
            let token = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Hugging Face token (input hidden): ")
                    .context("cannot read the token")?
            } else {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the token from stdin")?;
                text
            };
            let token = token.trim();
            if token.is_empty() {
                bail!(UsageError("no token given".into()));
            }
            let path = versus_engine::source::save_hub_token(token)?;
            eprintln!("token saved to {} (HF_TOKEN overrides it)", path.display());
            Ok(ExitStatus::Success)
        }
    }
}
