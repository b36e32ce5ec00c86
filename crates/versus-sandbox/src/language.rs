//! The languages answers can be run in, and the names (fence info strings, suite values) they go by.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language the sandbox can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Run with `python3`.
    Python,
    /// Run with `node` (as a CommonJS script).
    JavaScript,
    /// Compiled with `rustc` (edition 2021, `-O`), then run.
    Rust,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Language; 3] = [Language::Python, Language::JavaScript, Language::Rust];

    /// The canonical lowercase name: `python`, `javascript`, `rust`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::Rust => "rust",
        }
    }

    /// The language a name denotes, case-insensitively: a canonical name or a common alias as
    /// found in Markdown fence info strings (`py`, `python3`, `js`, `node`, `rs`, ...).
    pub fn from_name(name: &str) -> Option<Language> {
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "python" | "python3" | "py" | "py3" => Some(Language::Python),
            "javascript" | "js" | "node" | "nodejs" | "cjs" | "mjs" => Some(Language::JavaScript),
            "rust" | "rs" => Some(Language::Rust),
            _ => None,
        }
    }

    /// The file name the program is stored under inside the sandbox.
    pub(crate) fn source_file_name(self) -> &'static str {
        match self {
            Language::Python => "main.py",
            Language::JavaScript => "main.js",
            Language::Rust => "main.rs",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A language name that [`Language::from_name`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language `{0}`: use python, javascript or rust")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Language::from_name(name).ok_or_else(|| UnknownLanguage(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse() {
        for (name, language) in [
            ("python", Language::Python),
            ("Python3", Language::Python),
            ("py", Language::Python),
            ("javascript", Language::JavaScript),
            ("JS", Language::JavaScript),
            ("node", Language::JavaScript),
            ("rust", Language::Rust),
            ("rs", Language::Rust),
        ] {
            assert_eq!(name.parse::<Language>(), Ok(language), "{name}");
        }
        let error = "cobol".parse::<Language>().unwrap_err();
        assert!(error.to_string().contains("python, javascript or rust"));
    }

    #[test]
    fn canonical_names_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_name(language.name()), Some(language));
            assert_eq!(language.to_string(), language.name());
        }
    }
}
