//! Tokenizer files embedded in the binary, to write tiny random-weight models offline.
//!
//! They are byte-for-byte copies of the fixture models' files (`tests/fixtures/models`), one set
//! per family: `phi3` (phi-4's tokenizer), `phi35` (Phi-3.5-mini's), `llama` (Llama 3.2's) and
//! `qwen2` (Qwen2.5's). Each set loads with [`crate::tokenizer::Tokenizer::from_strings`].

/// One embedded file: its name in a model folder and its content.
pub type EmbeddedFile = (&'static str, &'static str);

const PHI3: &[EmbeddedFile] = &[
    (
        "tokenizer.json",
        include_str!("../assets/tiny/phi3/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_str!("../assets/tiny/phi3/tokenizer_config.json"),
    ),
    (
        "special_tokens_map.json",
        include_str!("../assets/tiny/phi3/special_tokens_map.json"),
    ),
    (
        "generation_config.json",
        include_str!("../assets/tiny/phi3/generation_config.json"),
    ),
];

const PHI35: &[EmbeddedFile] = &[
    (
        "tokenizer.json",
        include_str!("../assets/tiny/phi35/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_str!("../assets/tiny/phi35/tokenizer_config.json"),
    ),
    (
        "special_tokens_map.json",
        include_str!("../assets/tiny/phi35/special_tokens_map.json"),
    ),
    (
        "generation_config.json",
        include_str!("../assets/tiny/phi35/generation_config.json"),
    ),
];

const LLAMA: &[EmbeddedFile] = &[
    (
        "tokenizer.json",
        include_str!("../assets/tiny/llama/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_str!("../assets/tiny/llama/tokenizer_config.json"),
    ),
    (
        "special_tokens_map.json",
        include_str!("../assets/tiny/llama/special_tokens_map.json"),
    ),
    (
        "generation_config.json",
        include_str!("../assets/tiny/llama/generation_config.json"),
    ),
];

// Qwen2.5 ships no special_tokens_map.json.
const QWEN2: &[EmbeddedFile] = &[
    (
        "tokenizer.json",
        include_str!("../assets/tiny/qwen2/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_str!("../assets/tiny/qwen2/tokenizer_config.json"),
    ),
    (
        "generation_config.json",
        include_str!("../assets/tiny/qwen2/generation_config.json"),
    ),
];

/// The families that have an embedded tokenizer.
pub const TINY_TOKENIZER_FAMILIES: &[&str] = &["phi3", "phi35", "llama", "qwen2"];

/// The tokenizer files of a family (`phi3`, `phi35`, `llama` or `qwen2`), or `None` for any other
/// name.
pub fn tiny_tokenizer_files(family: &str) -> Option<&'static [EmbeddedFile]> {
    match family {
        "phi3" => Some(PHI3),
        "phi35" => Some(PHI35),
        "llama" => Some(LLAMA),
        "qwen2" => Some(QWEN2),
        _ => None,
    }
}

/// The content of one embedded file of a family, if it has it.
pub fn tiny_tokenizer_file(family: &str, name: &str) -> Option<&'static str> {
    tiny_tokenizer_files(family)?
        .iter()
        .find(|(file_name, _)| *file_name == name)
        .map(|(_, content)| *content)
}
