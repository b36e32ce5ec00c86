//! The command line, as clap derives it: `versus run`, `report`, `runs`, `chat`, `model`, `demo`,
//! `login`, `serve`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use versus_core::{DTypeChoice, DeviceChoice, Quantization};
use versus_store::Database;

#[derive(Debug, Parser)]
#[command(
    name = "versus",
    version,
    about = "Put language models head to head: the same tasks on every model, answers side by side, figures measured.",
    propagate_version = true
)]
pub struct Cli {
    /// The database holding runs and cached answers: a SQLite file, or a PostgreSQL server
    /// (`postgres://user@host/database`, shared by several processes and machines).
    #[arg(long, global = true, env = "VERSUS_DB", default_value = "versus.db")]
    pub db: Database,

    /// Print nothing but errors and requested output.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a suite's tasks on its models, storing every answer as it arrives.
    ///
    /// Running the same command again after an interruption does only the missing work.
    Run(Box<RunArgs>),
    /// Print the report of a run (the latest by default) as Markdown, JSON or HTML.
    Report(ReportArgs),
    /// Score a stored run again (checks, code, metrics, style, judge) without calling its models.
    Score(ScoreArgs),
    /// Bradley-Terry ratings with 95% intervals from judge verdicts and votes.
    Ratings(RatingsArgs),
    /// Import votes (battles) from other tools.
    Votes {
        #[command(subcommand)]
        command: VotesCommand,
    },
    /// List past runs with their date, suite, models and cell counts.
    Runs(RunsArgs),
    /// One generation from one model, streamed to the terminal.
    Chat(Box<ChatArgs>),
    /// Look at or make local models.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Offline, no keys: write two tiny local models, run the seed suite on them, write the report.
    Demo(DemoArgs),
    /// Store a token for a model hub (`versus login hf`).
    Login(LoginArgs),
    /// Serve local models over an OpenAI-compatible API (chat completions, models, health).
    Serve(Box<ServeArgs>),
    /// Browse runs in a local web app: matrices, answers side by side, run comparisons, blind
    /// voting and ratings.
    View(ViewArgs),
    /// Answer the pending cells of shared runs (`versus run --workers 0`), alongside any number
    /// of other workers on any machine that reaches the same PostgreSQL database.
    Worker(WorkerArgs),
}

#[derive(Debug, Subcommand)]
pub enum VotesCommand {
    /// Add battles from a JSONL file: one per line with `model_a`, `model_b`, `winner`
    /// (`model_a`, `model_b`, `tie`, `tie (bothbad)`), optional `task`, `category`, `judge`.
    Import(VotesImportArgs),
}

#[derive(Debug, Args)]
pub struct VotesImportArgs {
    #[arg(value_name = "FILE.jsonl")]
    pub file: PathBuf,
}

/// How answers are graded.
#[derive(Debug, Args, Default, Clone)]
pub struct GradingArgs {
    /// The judge: a model id from the suite, a spec, or `ID=SPEC` to name it (overrides the
    /// suite's `[judge]`).
    #[arg(long, value_name = "MODEL")]
    pub judge: Option<String>,
    /// Do not ask the judge, even if the suite names one.
    #[arg(long, conflicts_with = "judge")]
    pub no_judge: bool,
    /// Run model-written code without bubblewrap, with resource limits only.
    #[arg(long)]
    pub allow_unsandboxed: bool,
    /// Let the suite name files outside its own folder (absolute paths or `..`): images,
    /// reference files, the judge's prompts folder. A suite cannot grant this to itself.
    #[arg(long)]
    pub allow_outside_files: bool,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The run to score (see `versus runs`); the latest by default.
    #[arg(value_name = "RUN")]
    pub run: Option<i64>,
    #[command(flatten)]
    pub grading: GradingArgs,
    /// API root for a --judge given as a spec that has none (e.g. http://127.0.0.1:8080/v1).
    #[arg(long, value_name = "URL", requires = "judge")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Args)]
pub struct RatingsArgs {
    /// Only battles of this run (judge verdicts and votes on it); all by default.
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// Only battles of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Bootstrap rounds for the 95% intervals.
    #[arg(long, default_value_t = 1000)]
    pub rounds: usize,
    /// Seed of the bootstrap: the same seed gives the same intervals.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rate with style control, as Chatbot Arena does: Bradley-Terry with the two answers'
    /// length (the tokens their servers reported) and Markdown headers, list items and bold as
    /// covariates, and their coefficients. Battles whose answers are not in the store (imported
    /// votes without a run) are left out of it.
    #[arg(long)]
    pub style_control: bool,
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameters, dtype, context length, special tokens and chat template.
    Inspect(InspectArgs),
    /// Write a small random-weight model folder with a real tokenizer and the family's template.
    Tiny(TinyArgs),
}

/// How local models are loaded.
#[derive(Debug, Args, Default, Clone)]
pub struct LocalArgs {
    /// Number format for local models: auto (f32 on CPU), f32, f16, bf16.
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<DTypeChoice>,
    /// Quantize safetensors weights on load: q8_0 or q4k.
    #[arg(long, value_name = "KIND")]
    pub quantize: Option<Quantization>,
    /// Where local models run: auto, cpu, cuda, cuda:N, metal.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<DeviceChoice>,
    /// Load local models even when the memory estimate says they do not fit.
    #[arg(long)]
    pub force: bool,
    /// The most requests a local model decodes together (continuous batching; default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The model: hf:ORG/NAME, local:PATH, gguf:PATH, or a hosted one (openai:MODEL,
    /// anthropic:MODEL, gemini:MODEL, openai-responses:MODEL, azure:DEPLOYMENT, ollama:MODEL,
    /// openai-compatible:MODEL).
    #[arg(value_name = "SPEC")]
    pub spec: String,
    /// The user message.
    #[arg(value_name = "PROMPT")]
    pub prompt: String,
    /// A system message before it.
    #[arg(long)]
    pub system: Option<String>,
    /// API root for an openai-compatible model.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Stop at this text (repeatable).
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Extra chat template variable for local models, as NAME=VALUE (repeatable).
    #[arg(long = "template-var", value_name = "NAME=VALUE")]
    pub template_vars: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub requests: RequestArgs,
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A local model: hf:ORG/NAME, local:PATH or gguf:PATH.
    #[arg(value_name = "SPEC")]
    pub spec: String,
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    #[command(flatten)]
    pub local: LocalArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TinyArchArg {
    Phi3,
    Llama,
    Qwen2,
}

#[derive(Debug, Args)]
pub struct TinyArgs {
    /// The folder to write (created if needed).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    #[arg(long, value_enum)]
    pub arch: TinyArchArg,
    /// Seed of the random weights: the same seed writes the same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the tiny models and the report go.
    #[arg(long, default_value = "versus-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Output token limit per answer.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hub {
    /// The Hugging Face Hub: the token goes where `huggingface-cli login` puts it.
    Hf,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(value_enum)]
    pub hub: Hub,
}

/// What a client of `versus serve` or `versus view` may take and hold.
#[derive(Debug, Args, Clone)]
pub struct ConnectionArgs {
    /// Seconds a client gets to send a request's headers (also how long a keep-alive connection
    /// may sit idle between requests).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a connection may move no byte either way before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Connections open at once; more are closed as they arrive.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The port to listen on; 0 picks a free one. The URL is the first line on stdout.
    #[arg(long, default_value_t = 7777)]
    pub port: u16,
    /// The address to listen on; anything but loopback needs an access token (generated and
    /// printed unless --token-env names one).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Require the access token read from this environment variable (16 characters or more).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Require an access token on loopback too (generated and printed at start).
    #[arg(long)]
    pub require_token: bool,
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A local model to serve: `SPEC` or `ID=SPEC` (repeatable); clients ask for it by ID, the
    /// spec's name by default. SPEC is hf:ORG/NAME, local:PATH or gguf:PATH.
    #[arg(long = "model", short = 'm', value_name = "SPEC", required = true)]
    pub models: Vec<String>,
    /// The address to listen on; anything but a loopback address needs --api-key-env.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one. The address is the first line on stdout.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` with KEY read from this environment variable at start.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Requests that may wait per model while a batch runs; beyond that, 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub queue: usize,
    /// Log each request's messages and answer (by default only counts and timings).
    #[arg(long)]
    pub log_content: bool,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM before they are cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub shutdown_timeout: f64,
    /// Extra chat template variable, as NAME=VALUE (repeatable).
    #[arg(long = "template-var", value_name = "NAME=VALUE")]
    pub template_vars: Vec<String>,
    /// Let browser pages from this origin call the API (`http://localhost:3000`; repeatable).
    /// Other cross-site requests are refused.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The suite file (TOML). Use --builtin for a suite shipped with versus.
    #[arg(value_name = "SUITE", conflicts_with = "builtin")]
    pub suite: Option<PathBuf>,

    /// A builtin suite: `seed` (the tasks of the Phi-4 vs GPT-4o-mini article).
    #[arg(long, value_name = "NAME")]
    pub builtin: Option<String>,

    /// Run this model instead of the suite's models: a model id of the suite, `SPEC` or
    /// `ID=SPEC` (repeatable). SPEC is openai:MODEL, openai-responses:MODEL, anthropic:MODEL,
    /// gemini:MODEL, azure:DEPLOYMENT, ollama:MODEL, openai-compatible:MODEL, hf:ORG/NAME,
    /// local:PATH or gguf:PATH.
    #[arg(long = "model", short = 'm', value_name = "SPEC")]
    pub models: Vec<String>,

    /// Run this model in addition to the suite's models (replacing one with the same id).
    #[arg(long = "add-model", value_name = "SPEC")]
    pub add_models: Vec<String>,

    /// API root for models given with --model/--add-model/--judge that have none (e.g.
    /// http://127.0.0.1:8080/v1); repeated, the roots of replicas that --model/--add-model
    /// models spread their requests over (an endpoint pool; a --judge takes the first).
    #[arg(long = "base-url", value_name = "URL")]
    pub base_urls: Vec<String>,

    /// Only these tasks (repeatable).
    #[arg(long = "task", value_name = "ID")]
    pub tasks: Vec<String>,

    /// Only tasks of these categories (repeatable).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,

    /// Call the models even when an identical answer is stored.
    #[arg(long)]
    pub no_cache: bool,

    /// Reuse stored answers even when sampling is random (temperature > 0 and no seed).
    #[arg(long, conflicts_with = "no_cache")]
    pub reuse: bool,

    /// Start a new run even if an interrupted run of the same plan could be resumed.
    #[arg(long)]
    pub fresh: bool,

    #[command(flatten)]
    pub overrides: OverrideArgs,

    #[command(flatten)]
    pub local: LocalArgs,

    #[command(flatten)]
    pub grading: GradingArgs,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// Do not score the answers at the end (`versus score` can do it later).
    #[arg(long)]
    pub no_score: bool,

    /// Send the cells of models whose provider has a batch API (openai:, anthropic:, gemini:)
    /// as batches, answered within hours at half the list price; other models are called as
    /// usual. The batch ids are stored: running the same command again collects a batch
    /// instead of paying twice. (`--batch N` is the local models' batch size.)
    #[arg(long)]
    pub batch_api: bool,

    /// How often to ask a provider whether a batch has ended, in seconds (default 30).
    #[arg(long, value_name = "SECONDS", requires = "batch_api")]
    pub batch_poll: Option<f64>,

    /// `--workers 0`: record the run and its cells and leave the asking to `versus worker`
    /// processes (on any machine that reaches the database); only 0 is accepted.
    #[arg(long, value_name = "N", conflicts_with = "batch_api")]
    pub workers: Option<usize>,

    /// With `--workers 0`: wait, showing progress, until the workers have answered every cell.
    #[arg(long, requires = "workers")]
    pub wait: bool,
}

/// `versus worker`: answers the pending cells of shared runs (`versus run --workers 0`).
#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    /// Serve only these model ids (comma-separated); by default every model of a run that this
    /// machine can build (its keys, its local model files).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub models: Vec<String>,

    /// Stop once no cell this worker could serve is pending or leased.
    #[arg(long)]
    pub exit_when_idle: bool,

    /// How long a claim on a cell lasts without a heartbeat, in seconds; a worker killed
    /// outright loses its cells to others after this long (default 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_secs: u64,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// How each answer is sampled: over the suite's settings in `versus run`, alone in `versus chat`.
#[derive(Debug, Args, Default)]
pub struct SamplingArgs {
    /// Sampling temperature for every model and task.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold for every model and task.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Output token limit for every model and task.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling seed for every model and task.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sample among the k most likely tokens (local models, vLLM).
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Drop tokens less likely than this times the most likely one (local models, vLLM).
    #[arg(long)]
    pub min_p: Option<f64>,
    /// Penalise tokens already present, as transformers does; 1.0 is none (local models, vLLM).
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
}

/// How each request to a hosted model is sent.
#[derive(Debug, Args, Default)]
pub struct RequestArgs {
    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Retries after a failed attempt (429, 5xx, resets, timeouts); at most 100.
    #[arg(long)]
    pub retries: Option<u32>,
    /// The most bytes one answer's body (JSON, or a whole stream) may have before the attempt
    /// fails (default 64 MiB; 1 KiB to 4 GiB).
    #[arg(long, value_name = "BYTES")]
    pub max_response_bytes: Option<u64>,
    /// The longest line of a streamed answer before the attempt fails (default 8 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_sse_line_bytes: Option<u64>,
}

/// Settings that override the suite's for this run.
#[derive(Debug, Args, Default)]
pub struct OverrideArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub requests: RequestArgs,
    /// Ask every task this many times of every model (1..=1000), over the suite's `samples`;
    /// samples that sample get seed base + i, so each is reproducible and cached on its own.
    #[arg(long, value_name = "N")]
    pub samples: Option<u32>,
    /// Requests in flight at once per model.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Requests in flight at once across all models.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
}

/// Where API keys may go. A suite names the variable a key is read from and the URL it is sent
/// to; these flags are the user's say over both.
#[derive(Debug, Args, Default, Clone)]
pub struct KeyArgs {
    /// Let this environment variable be sent as an API key although its name does not look like
    /// one (a key variable is the provider's default or ends in _KEY or _TOKEN) (repeatable).
    #[arg(long = "allow-key-env", value_name = "NAME")]
    pub allow_key_env: Vec<String>,
    /// Send API keys over plain http to hosts other than this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
    /// One self-contained page: opens offline, loads nothing.
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to report (see `versus runs`); the latest by default.
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,

    #[arg(long, short, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,

    /// Write the report to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn suite_and_builtin_exclude_each_other() {
        let parsed = Cli::try_parse_from(["versus", "run", "s.toml", "--builtin", "seed"]);
        assert!(parsed.is_err());
    }
}
