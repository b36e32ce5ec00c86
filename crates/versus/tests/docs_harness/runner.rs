//! Runs the docs' `sh` examples as a reader would, offline: each block in its own temporary
//! folder, its commands in order, `versus` being the binary under test.
//!
//! What stands in for the world:
//! - hosted models: the scripted fake server, which speaks every provider's format and answers
//!   judge prompts with a verdict and everything else with its default answer, reached through
//!   each provider's own variables (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`,
//!   `GOOGLE_GEMINI_BASE_URL`, `AZURE_OPENAI_ENDPOINT`, `OLLAMA_HOST`) with test keys
//!   (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`, `AZURE_OPENAI_API_KEY`);
//! - model files: every `local:PATH` and `gguf:PATH` a block names (and does not make itself with
//!   `versus model tiny`) is put at PATH, and every `hf:ORG/NAME` is in the block's own Hub cache
//!   (`HF_HOME`, with `HF_HUB_OFFLINE=1`), as if downloaded. Local models are one tiny Phi-3 that
//!   ends every answer after one token (the examples test commands, not models); GGUF files are the
//!   engine's tiny Phi-4 fixture;
//! - servers (`versus serve`, `versus view`): started on a free port (`--port 0` in place of the
//!   one written), checked to print their URL first (the one the example's comment shows, port
//!   aside), then stopped with Ctrl-C (SIGINT);
//! - secrets written `...` (`export KEY=...`): a test value;
//! - everything else a block needs is in [`SETUPS`], found by a text the block contains.
//!
//! A command must exit 0, or with the code its comment documents (`# exit 2: ...`), and print no
//! usage error; `cargo run [--release] -- ARGS` runs `versus ARGS`.

// kill(2) on this harness's own child processes, with its SAFETY comment.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use versus_testkit::{FakeServer, Rule, Script};

use super::cli_tree::{self, versus_args};
use super::markdown::ShBlock;
use super::shell::ShellCommand;

/// What a block needs that it does not make itself.
#[derive(Debug, Clone, Copy)]
pub enum Setup {
    /// A file in the block's folder: its name and contents.
    File(&'static str, Contents),
    /// A model in the Hub cache, as if downloaded: `ORG/NAME`.
    HubModel(&'static str),
    /// Text on the standard input of the command written so (else stdin is empty).
    Stdin {
        command: &'static str,
        text: &'static str,
    },
    /// A finished run in the database, for commands that browse runs: `versus ARGS` run first.
    Before(&'static [&'static str]),
    /// `versus ARGS` serving in the background for the whole block, on a free port that replaces
    /// `port` wherever the block writes `:port`.
    Server {
        args: &'static [&'static str],
        port: &'static str,
    },
}

/// Where a [`Setup::File`]'s contents come from.
#[derive(Debug, Clone, Copy)]
pub enum Contents {
    /// The README's suite reference (its ```toml block).
    SuiteReference,
    /// A 1x1 PNG.
    Png,
}

/// What blocks need, by a text the block contains.
pub const SETUPS: &[(&str, Setup)] = &[
    // The README's suite reference is the suite `my-suite.toml` the examples run, image and all.
    (
        "my-suite.toml",
        Setup::File("my-suite.toml", Contents::SuiteReference),
    ),
    ("my-suite.toml", Setup::File("photo.png", Contents::Png)),
    // The seed suite's local model.
    ("--builtin seed", Setup::HubModel("microsoft/phi-4")),
    (
        "versus login hf",
        Setup::Stdin {
            command: "versus login hf",
            text: "hf_docs_example_token\n",
        },
    ),
    (
        "versus view",
        Setup::Before(&[
            "run",
            "--builtin",
            "seed",
            "-m",
            "openai:gpt-4o-mini",
            "-m",
            "mini=openai:gpt-4.1-mini",
        ]),
    ),
    // The `curl` example talks to the `versus serve` above it.
    (
        "curl ",
        Setup::Server {
            args: &["serve", "--model", "phi4=local:./tiny"],
            port: "8080",
        },
    ),
];

/// The commands that serve until stopped.
const SERVERS: [&str; 2] = ["serve", "view"];

/// The API key the examples' environment has, and what `...` stands for in `NAME=...`.
const SECRET: &str = "docs-example-secret-7f3a9c2e5b8d4610";

/// How long one command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(180);
/// How long a server may take to print its URL, and to stop.
const SERVER_LIMIT: Duration = Duration::from_secs(60);

/// The fake server, the shared model files and the binary: everything blocks share.
pub struct Harness {
    versus: PathBuf,
    server: FakeServer,
    suite_reference: Option<String>,
    /// The models every block copies, made on first use.
    models: OnceLock<Result<SharedModels, String>>,
    models_dir: tempfile::TempDir,
}

struct SharedModels {
    /// A tiny Phi-3 folder whose every token ends the answer.
    terse: PathBuf,
    /// The engine's tiny Phi-4 GGUF fixture.
    gguf: PathBuf,
}

impl Harness {
    /// `suite_reference` is the README's suite TOML, for the blocks that run `my-suite.toml`.
    pub fn new(suite_reference: Option<String>) -> Harness {
        let script = Script::new()
            .log_requests(false)
            // The judge's prompts: a verdict it can read, so that judging does something.
            .rule(Rule::any().prompt_contains("[[C]]").answer(
                "Both answer the request; the first is clearer and more complete.\n\n[[A]]",
            ))
            .rule(
                Rule::any()
                    .prompt_contains("Rating: [[")
                    .answer("Correct and clear.\n\nRating: [[7]]"),
            );
        Harness {
            versus: PathBuf::from(env!("CARGO_BIN_EXE_versus")),
            server: FakeServer::start_in_thread(script).expect("start the fake OpenAI server"),
            suite_reference,
            models: OnceLock::new(),
            models_dir: tempfile::Builder::new()
                .prefix("versus-docs-models-")
                .tempdir()
                .expect("create a temporary folder"),
        }
    }

    /// Runs blocks on a few threads; the failures, each with its block's place.
    pub fn run_all(&self, blocks: &[&ShBlock]) -> Vec<String> {
        let queue = Mutex::new(blocks.iter());
        let failures = Mutex::new(Vec::new());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(block) = next else { break };
                    if let Err(failure) = self.run_block(block) {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(failure);
                    }
                });
            }
        });
        let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
        failures.sort();
        failures
    }

    /// Runs one block in a fresh folder: its setups, its stand-ins, then each command in turn,
    /// stopping at the first that fails.
    pub fn run_block(&self, block: &ShBlock) -> Result<(), String> {
        let place = &block.place;
        let dir = tempfile::Builder::new()
            .prefix("versus-docs-example-")
            .tempdir()
            .map_err(|e| format!("{place}: cannot create a temporary folder: {e}"))?;
        let mut shell = BlockShell {
            harness: self,
            dir: dir.path(),
            env: BTreeMap::new(),
            stdin: Vec::new(),
            port_swaps: Vec::new(),
            servers: Vec::new(),
        };
        let result = shell.run(block);
        let stopped = shell.stop_servers();
        result.and(stopped).map_err(|e| format!("{place}: {e}"))
    }

    fn shared_models(&self) -> Result<&SharedModels, String> {
        self.models
            .get_or_init(|| self.make_shared_models())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn make_shared_models(&self) -> Result<SharedModels, String> {
        let terse = self.models_dir.path().join("terse-phi3");
        let output = Command::new(&self.versus)
            .args(["model", "tiny"])
            .arg(&terse)
            .args(["--arch", "phi3"])
            .output()
            .map_err(|e| format!("cannot start versus: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "`versus model tiny` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        end_every_answer_at_once(&terse)?;
        let gguf = super::repository_root()
            .join("crates/versus-engine/tests/fixtures/models/tiny-phi4-gguf/model-q8_0.gguf");
        let fixtures = std::env::var_os("VERSUS_FIXTURES").map(PathBuf::from);
        let gguf = match fixtures {
            Some(dir) => dir.join("tiny-phi4-gguf/model-q8_0.gguf"),
            None => gguf,
        };
        if !gguf.is_file() {
            return Err(format!("the GGUF fixture {} is missing", gguf.display()));
        }
        Ok(SharedModels { terse, gguf })
    }
}

/// Makes every token of a tiny model an end-of-sequence token (in generation_config.json), so
/// that it answers in one token: random weights say nothing worth waiting for.
fn end_every_answer_at_once(dir: &Path) -> Result<(), String> {
    let read_json = |name: &str| -> Result<serde_json::Value, String> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let vocab = read_json("config.json")?["vocab_size"]
        .as_u64()
        .ok_or("the tiny model's config.json has no vocab_size")?;
    let mut generation = read_json("generation_config.json")?;
    generation["eos_token_id"] = (0..vocab).collect::<Vec<u64>>().into();
    let path = dir.join("generation_config.json");
    std::fs::write(&path, generation.to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// One block's run: its folder, its environment and its background servers.
struct BlockShell<'a> {
    harness: &'a Harness,
    dir: &'a Path,
    /// Variables the block exported.
    env: BTreeMap<String, String>,
    /// Standard input for commands written so.
    stdin: Vec<(&'static str, &'static str)>,
    /// `(written, actual)`: ports of background servers, replaced in every command.
    port_swaps: Vec<(String, String)>,
    servers: Vec<Server>,
}

impl BlockShell<'_> {
    fn run(&mut self, block: &ShBlock) -> Result<(), String> {
        self.set_up(block)?;
        for command in &block.commands {
            let started = Instant::now();
            self.run_command(command)
                .map_err(|e| format!("line {}: `{}`: {e}", command.line, command.display()))?;
            // Shown with `--nocapture`: what each example costs.
            println!(
                "{}:{}: {:.1} s",
                block.place.file,
                command.line,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// The block's [`SETUPS`] and the stand-ins for the models it names.
    fn set_up(&mut self, block: &ShBlock) -> Result<(), String> {
        for (text, setup) in SETUPS {
            if !block.text.contains(text) {
                continue;
            }
            match *setup {
                Setup::File(name, contents) => {
                    let bytes = match contents {
                        Contents::SuiteReference => self
                            .harness
                            .suite_reference
                            .clone()
                            .ok_or("the README has no suite reference (its ```toml block)")?
                            .into_bytes(),
                        Contents::Png => crate::support::PIXEL_PNG.to_vec(),
                    };
                    write(&self.dir.join(name), &bytes)?;
                }
                Setup::HubModel(repo) => self.hub_model(repo)?,
                Setup::Stdin { command, text } => self.stdin.push((command, text)),
                Setup::Before(args) => {
                    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                    let finished = run_to_end(self.versus(&args), None, COMMAND_LIMIT)?;
                    if finished.status.code() != Some(0) {
                        return Err(format!(
                            "the setup `versus {}` failed{}",
                            args.join(" "),
                            finished.describe()
                        ));
                    }
                }
                Setup::Server { args, port } => {
                    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                    self.stand_ins(&[args.clone()], &[])?;
                    free_port(&mut args);
                    let server = Server::start(self.versus(&args))?;
                    let actual = server.port().ok_or_else(|| {
                        format!(
                            "the setup `versus {}` printed no address: {}",
                            args.join(" "),
                            server.first_line
                        )
                    })?;
                    self.port_swaps
                        .push((format!(":{port}"), format!(":{actual}")));
                    self.servers.push(server);
                }
            }
        }
        let versus_commands: Vec<Vec<String>> = block
            .commands
            .iter()
            .filter_map(|c| versus_args(&c.words).map(<[String]>::to_vec))
            .collect();
        let made_by_block: Vec<String> = versus_commands
            .iter()
            .filter_map(|args| match args.as_slice() {
                [model, tiny, out, ..] if model == "model" && tiny == "tiny" => {
                    Some(normalize(out))
                }
                _ => None,
            })
            .collect();
        self.stand_ins(&versus_commands, &made_by_block)
    }

    /// Puts a stand-in wherever `commands` name a local model (`local:`, `gguf:`, `hf:`), except
    /// the paths in `made_by_block`.
    fn stand_ins(&self, commands: &[Vec<String>], made_by_block: &[String]) -> Result<(), String> {
        for word in commands.iter().flatten() {
            let spec = match word.split_once('=') {
                Some((id, spec)) if !id.contains(':') => spec,
                _ => word.as_str(),
            };
            let model_path = spec
                .strip_prefix("local:")
                .or_else(|| spec.strip_prefix("gguf:"));
            if let Some(path) = model_path {
                // A stand-in goes in the block's folder and nowhere else.
                let inside = Path::new(path)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                if !inside {
                    return Err(format!(
                        "`{spec}`: name model files by a relative path inside the example's folder, so that the test can put a stand-in there"
                    ));
                }
            }
            if let Some(path) = spec.strip_prefix("local:") {
                if !made_by_block.contains(&normalize(path)) && !self.dir.join(path).exists() {
                    let models = self.harness.shared_models()?;
                    copy_folder(&models.terse, &self.dir.join(path))?;
                }
            } else if let Some(path) = spec.strip_prefix("gguf:") {
                if !self.dir.join(path).exists() {
                    let models = self.harness.shared_models()?;
                    copy_file(&models.gguf, &self.dir.join(path))?;
                }
            } else if let Some(repo) = spec.strip_prefix("hf:") {
                self.hub_model(repo)?;
            }
        }
        Ok(())
    }

    /// `ORG/NAME[@REVISION]` in the block's Hub cache, laid out as the Hub client leaves it.
    fn hub_model(&self, repo: &str) -> Result<(), String> {
        let (name, revision) = repo.split_once('@').unwrap_or((repo, "main"));
        let folder = self
            .hub_cache()
            .join(format!("models--{}", name.replace('/', "--")));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snapshot = folder.join("snapshots").join(commit);
        if snapshot.exists() {
            return Ok(());
        }
        let models = self.harness.shared_models()?;
        copy_folder(&models.terse, &snapshot)?;
        write(&folder.join("refs").join(revision), commit.as_bytes())
    }

    fn hub_cache(&self) -> PathBuf {
        self.dir.join(".cache/huggingface/hub")
    }

    /// `versus ARGS` in the block's folder and environment.
    fn versus(&self, args: &[String]) -> Command {
        let mut command = Command::new(&self.harness.versus);
        command.args(args);
        self.environment(&mut command);
        command
    }

    /// What every command of the block sees: the inherited environment without any provider's,
    /// versus's or Hugging Face settings, then the stand-ins', then the block's exports.
    fn environment(&self, command: &mut Command) {
        command.current_dir(self.dir);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if [
                "OPENAI_",
                "VERSUS_",
                "HF_",
                "HUGGING_FACE_",
                "ANTHROPIC_",
                "GEMINI_",
                "GOOGLE_",
                "AZURE_OPENAI_",
                "OLLAMA_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(&*name);
            }
        }
        let root = self.harness.server.root_url();
        command
            .env("NO_COLOR", "1")
            .env("OPENAI_BASE_URL", self.harness.server.base_url())
            .env("OPENAI_API_KEY", SECRET)
            .env("ANTHROPIC_BASE_URL", &root)
            .env("ANTHROPIC_API_KEY", SECRET)
            .env("GOOGLE_GEMINI_BASE_URL", &root)
            .env("GEMINI_API_KEY", SECRET)
            .env("AZURE_OPENAI_ENDPOINT", &root)
            .env("AZURE_OPENAI_API_KEY", SECRET)
            .env("OLLAMA_HOST", &root)
            .env("HF_HOME", self.dir.join(".cache/huggingface"))
            .env("HF_HUB_OFFLINE", "1")
            .envs(&self.env);
    }

    fn run_command(&mut self, written: &ShellCommand) -> Result<(), String> {
        let mut words = written.words.clone();
        for word in &mut words {
            for (from, to) in &self.port_swaps {
                *word = word.replace(from, to);
            }
        }
        let env: Vec<(String, String)> = written
            .env
            .iter()
            .map(|(name, value)| (name.clone(), secret(value)))
            .collect();
        let Some(program) = words.first().cloned() else {
            return Err(
                "a variable set without `export` reaches no command: write `export NAME=VALUE` or `NAME=VALUE command`".into(),
            );
        };
        if program == "export" {
            for pair in &words[1..] {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`export {pair}`: write `export NAME=VALUE`"))?;
                self.env.insert(name.to_string(), secret(value));
            }
            return Ok(());
        }
        let stdin = self
            .stdin
            .iter()
            .find(|(command, _)| written.display().starts_with(command))
            .map(|(_, text)| *text);
        let mut command = match versus_args(&words) {
            Some(args) => {
                cli_tree::check_args(args)?;
                let args = args.to_vec();
                let root = cli_tree::versus();
                let path = cli_tree::subcommand_path(&root, &args);
                if path.len() == 1 && SERVERS.contains(&path[0].as_str()) {
                    let mut args = args;
                    free_port(&mut args);
                    let mut command = self.versus(&args);
                    command.envs(env);
                    return self.check_server(command, written);
                }
                self.versus(&args)
            }
            None if program == "cargo" => {
                return Err("only `cargo run [--release] -- ARGS` can run here (as `versus ARGS`); mark other cargo commands `<!-- needs: workspace -->`".into());
            }
            None if !on_path(&program) => {
                return Err(format!(
                    "`{program}` is not installed: install it (scripts/test installs what the docs' examples run), or mark the block `<!-- needs: ... -->`"
                ));
            }
            None => {
                let mut command = Command::new(&program);
                command.args(&words[1..]);
                self.environment(&mut command);
                command
            }
        };
        command.envs(env);
        let finished = run_to_end(command, stdin, COMMAND_LIMIT)?;
        finished.check(written.expected_exit())
    }

    /// Starts a server, checks that its first line is its URL (the comment's, port aside), and
    /// stops it.
    fn check_server(&mut self, command: Command, written: &ShellCommand) -> Result<(), String> {
        let server = Server::start(command)?;
        let printed = url_in(&server.first_line).map(without_port);
        let documented = written
            .comment
            .as_deref()
            .and_then(url_in)
            .map(without_port);
        let first_line = server.first_line.clone();
        let finished = server.stop()?;
        if printed.is_none() {
            return Err(format!(
                "its first line is not its URL: {first_line:?}{}",
                finished.describe()
            ));
        }
        if documented.is_some() && documented != printed {
            return Err(format!(
                "the comment shows {} but it listens on {first_line:?}",
                documented.unwrap_or_default()
            ));
        }
        finished.check_stopped()
    }

    fn stop_servers(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for server in self.servers.drain(..) {
            let stopped = server.stop().and_then(|finished| finished.check_stopped());
            if let Err(error) = stopped {
                result = Err(format!("the setup's server: {error}"));
            }
        }
        result
    }
}

/// `--port 0` in place of the port written (or added): tests must not depend on a fixed port.
fn free_port(args: &mut Vec<String>) {
    match args
        .iter()
        .position(|a| a == "--port" || a.starts_with("--port="))
    {
        Some(index) if args[index] == "--port" && index + 1 < args.len() => {
            args[index + 1] = "0".into();
        }
        Some(index) => args[index] = "--port=0".into(),
        None => args.extend(["--port".to_string(), "0".to_string()]),
    }
}

/// A value written `...` (a secret the reader supplies) becomes the test's secret.
fn secret(value: &str) -> String {
    if value == "..." {
        SECRET.to_string()
    } else {
        value.to_string()
    }
}

/// Whether a program can be started by name.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// `./tiny` and `tiny` are the same path.
fn normalize(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

/// The first `http://` URL in a text.
fn url_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .map(|word| word.trim_end_matches([',', ';', ')']).to_string())
}

/// A URL with its port replaced by `PORT`.
fn without_port(url: String) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return url;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    format!("http://{host}:PORT/{path}")
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), String> {
    let bytes = std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    write(to, &bytes)
}

fn copy_folder(from: &Path, to: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", from.display()))?;
        copy_file(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

/// A command's end: its status and output.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// Exit `expected`, and no usage message (clap's `Usage:` on stderr).
    fn check(&self, expected: i32) -> Result<(), String> {
        if self.status.code() != Some(expected) {
            return Err(format!("expected exit {expected}{}", self.describe()));
        }
        if self.stderr.contains("Usage: ") {
            return Err(format!("a usage error{}", self.describe()));
        }
        Ok(())
    }

    /// A server stopped by Ctrl-C: exit 0 (a graceful stop), 130, or ended by SIGINT itself.
    fn check_stopped(&self) -> Result<(), String> {
        use std::os::unix::process::ExitStatusExt;
        let stopped = matches!(self.status.code(), Some(0 | 130))
            || self.status.signal() == Some(libc::SIGINT);
        if !stopped {
            return Err(format!("did not stop cleanly on Ctrl-C{}", self.describe()));
        }
        if self.stderr.contains("Usage: ") {
            return Err(format!("a usage error{}", self.describe()));
        }
        Ok(())
    }

    /// Its status and the end of its output, for a failure message.
    fn describe(&self) -> String {
        format!(
            ", got {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// The last lines of an output.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a command to its end (killed after `limit`), with `stdin` as its input (else none).
fn run_to_end(
    mut command: Command,
    stdin: Option<&str>,
    limit: Duration,
) -> Result<Finished, String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut command)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write its input: {e}"))?;
    }
    let stdout = drain(child.stdout.take().ok_or("no stdout")?);
    let stderr = drain(child.stderr.take().ok_or("no stderr")?);
    let status = wait(&mut child, limit)?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Finished {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "still running after {} s; stopped\n--- stderr (end) ---\n{}",
            limit.as_secs(),
            tail(&stderr)
        )),
    }
}

fn spawn(command: &mut Command) -> Result<Child, String> {
    command.spawn().map_err(|e| {
        format!(
            "cannot start `{}`: {e}",
            command.get_program().to_string_lossy()
        )
    })
}

/// Waits up to `limit`; `None` (after killing it) if it is still running.
fn wait(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("cannot wait: {e}"))? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `versus serve` or `versus view` that printed its first line.
struct Server {
    child: Child,
    first_line: String,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Server {
    fn start(mut command: Command) -> Result<Server, String> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut command)?;
        let stderr = drain(child.stderr.take().ok_or("no stderr")?);
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let (lines, first) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut rest = String::new();
            for (index, line) in stdout.lines().map_while(Result::ok).enumerate() {
                if index == 0 {
                    let _ = lines.send(line.clone());
                }
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        match first.recv_timeout(SERVER_LIMIT) {
            Ok(first_line) => Ok(Server {
                child,
                first_line,
                stdout,
                stderr,
            }),
            Err(_) => {
                let status = wait(&mut child, Duration::from_secs(5))?;
                let _ = child.kill();
                Err(format!(
                    "it printed no first line (status {status:?})\n--- stderr (end) ---\n{}",
                    tail(&stderr.join().unwrap_or_default())
                ))
            }
        }
    }

    /// The port in its first line (`listening on http://127.0.0.1:PORT/v1`).
    fn port(&self) -> Option<String> {
        let url = url_in(&self.first_line)?;
        let authority = url.strip_prefix("http://")?.split('/').next()?;
        authority.rsplit_once(':').map(|(_, port)| port.to_string())
    }

    /// Ctrl-C, then its end (killed if it outlives [`SERVER_LIMIT`]).
    fn stop(mut self) -> Result<Finished, String> {
        let pid = i32::try_from(self.child.id()).map_err(|e| format!("a pid: {e}"))?;
        // SAFETY: kill(2) on a child this harness started and has not waited for.
        let sent = unsafe { libc::kill(pid, libc::SIGINT) };
        if sent != 0 {
            return Err(format!(
                "cannot send SIGINT: {}",
                std::io::Error::last_os_error()
            ));
        }
        let status = wait(&mut self.child, SERVER_LIMIT)?;
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        match status {
            Some(status) => Ok(Finished {
                status,
                stdout: format!("{}\n{stdout}", self.first_line),
                stderr,
            }),
            None => Err(format!(
                "still running {} s after Ctrl-C; killed\n--- stderr (end) ---\n{}",
                SERVER_LIMIT.as_secs(),
                tail(&stderr)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_get_a_free_port() {
        let args = |written: &[&str]| {
            let mut args: Vec<String> = written.iter().map(|a| a.to_string()).collect();
            free_port(&mut args);
            args
        };
        assert_eq!(args(&["view"]), ["view", "--port", "0"]);
        assert_eq!(args(&["view", "--port", "7777"]), ["view", "--port", "0"]);
        assert_eq!(args(&["view", "--port=7777"]), ["view", "--port=0"]);
    }

    #[test]
    fn urls_compare_without_their_port() {
        let url = |text: &str| url_in(text).map(without_port);
        assert_eq!(
            url("listening on http://127.0.0.1:41234/v1"),
            url("http://127.0.0.1:8080/v1")
        );
        assert_ne!(url("http://0.0.0.0:1/"), url("http://127.0.0.1:1/"));
        assert_eq!(url("no address"), None);
        assert_eq!(secret("..."), SECRET);
        assert_eq!(secret("abc"), "abc");
    }
}
