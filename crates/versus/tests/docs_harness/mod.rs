//! The harness behind `tests/docs.rs`: reads README.md and docs/*.md ([`markdown`], [`shell`]),
//! knows the command line as clap defines it ([`cli_tree`], over `src/cli.rs` itself), and runs
//! the shell examples offline ([`runner`]). Tested on small synthetic pages, so that its failure
//! paths are known to fail.

pub mod cli_tree;
pub mod coverage;
pub mod markdown;
pub mod runner;
pub mod shell;

// The binary's own command-line definition, compiled into this test: what the test walks and
// parses examples with is exactly what `versus` parses. Only its types are used here.
#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli;

use std::path::PathBuf;

use markdown::{Page, ShBlock};

/// The repository's root folder.
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The documentation: README.md, then docs/*.md in name order, read.
pub struct Docs {
    pub pages: Vec<Page>,
}

impl Docs {
    /// Reads the repository's docs; panics with every page's errors.
    pub fn load() -> Docs {
        let root = repository_root();
        let mut files = vec![PathBuf::from("README.md")];
        let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
            .expect("list docs/")
            .map(|entry| entry.expect("a docs/ entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "md"))
            .map(|path| PathBuf::from("docs").join(path.file_name().expect("a file name")))
            .collect();
        docs.sort();
        files.extend(docs);
        let mut pages = Vec::new();
        let mut errors = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(root.join(&file))
                .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            match markdown::read_page(&file.to_string_lossy(), &text) {
                Ok(page) => pages.push(page),
                Err(error) => errors.push(error),
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        Docs { pages }
    }

    /// Pages from text, for the harness's own tests.
    pub fn from_text(pages: &[(&str, &str)]) -> Result<Docs, String> {
        let pages = pages
            .iter()
            .map(|(file, text)| markdown::read_page(file, text))
            .collect::<Result<_, _>>()?;
        Ok(Docs { pages })
    }

    pub fn sh_blocks(&self) -> impl Iterator<Item = &ShBlock> {
        self.pages.iter().flat_map(|page| &page.sh_blocks)
    }

    /// The README's suite reference: its ```toml block that names `my-suite`.
    pub fn suite_reference(&self) -> Option<String> {
        self.pages
            .iter()
            .flat_map(|page| &page.toml_blocks)
            .find(|(_, text)| text.starts_with("name = \"my-suite\""))
            .map(|(_, text)| text.clone())
    }

    /// Every `versus` command in every block, marked or not, parsed as the binary parses it:
    /// the refusals, each with its place.
    pub fn parse_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for block in self.sh_blocks() {
            for command in &block.commands {
                if let Some(args) = cli_tree::versus_args(&command.words) {
                    if let Err(error) = cli_tree::check_args(args) {
                        failures.push(format!(
                            "{}:{}: `{}`: {error}",
                            block.place.file,
                            command.line,
                            command.display()
                        ));
                    }
                }
            }
        }
        failures
    }
}
