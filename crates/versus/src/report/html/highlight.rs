//! Code highlighting for answers, done here in Rust when the page is written rather than by a
//! script in the browser: the page then needs no script to read code, prints highlighted, and
//! model-written text is never handled by JavaScript at all.
//!
//! It runs on HTML that `crate::render::markdown_to_safe_html` has already sanitized. Each
//! `<code class="language-X">` block's text is decoded back to plain text, split into tokens by a
//! small lexer (keywords, strings, comments, numbers, literals; Python, JavaScript/TypeScript,
//! Rust, shell, JSON), and written out again with every token escaped by `crate::render::escape`
//! inside a `<span class="tok-...">` whose class is one of our constants. So the only markup this
//! adds is our own spans, and anything unexpected (a tag inside the block, an unknown entity)
//! leaves the block exactly as the sanitizer wrote it.

use crate::render::escape;

/// Highlights every fenced code block of a known language in sanitized answer HTML.
pub fn highlight_code_blocks(safe_html: &str) -> String {
    const OPEN: &str = "<code class=\"language-";
    const CLOSE: &str = "</code>";
    let mut out = String::with_capacity(safe_html.len() + safe_html.len() / 4);
    let mut rest = safe_html;
    while let Some(start) = rest.find(OPEN) {
        let after_open = &rest[start + OPEN.len()..];
        let Some(quote) = after_open.find('"') else {
            break;
        };
        let language = &after_open[..quote];
        let Some(body_start) = after_open[quote..].strip_prefix("\">") else {
            // Not the exact shape the sanitizer writes: copy up to here and look further on.
            let skip = start + OPEN.len();
            out.push_str(&rest[..skip]);
            rest = &rest[skip..];
            continue;
        };
        let Some(body_len) = body_start.find(CLOSE) else {
            break;
        };
        let body = &body_start[..body_len];
        let tag_len = start + OPEN.len() + quote + 2;
        out.push_str(&rest[..tag_len]);
        match (Language::from_class(language), decode_text(body)) {
            (Some(language), Some(text)) => out.push_str(&highlight(&text, language)),
            _ => out.push_str(body),
        }
        out.push_str(CLOSE);
        rest = &body_start[body_len + CLOSE.len()..];
    }
    out.push_str(rest);
    out
}

/// The languages the lexer knows, by the class names pulldown-cmark gives fenced code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
    Rust,
    Shell,
    Json,
}

impl Language {
    pub fn from_class(name: &str) -> Option<Language> {
        match name {
            "python" | "py" => Some(Language::Python),
            "javascript" | "js" | "typescript" | "ts" => Some(Language::JavaScript),
            "rust" | "rs" => Some(Language::Rust),
            "bash" | "sh" | "shell" => Some(Language::Shell),
            "json" => Some(Language::Json),
            _ => None,
        }
    }

    fn syntax(self) -> &'static Syntax {
        match self {
            Language::Python => &PYTHON,
            Language::JavaScript => &JAVASCRIPT,
            Language::Rust => &RUST,
            Language::Shell => &SHELL,
            Language::Json => &JSON,
        }
    }
}

/// What the lexer needs to know about a language.
struct Syntax {
    keywords: &'static [&'static str],
    literals: &'static [&'static str],
    line_comments: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    quotes: &'static [char],
    /// Python's `"""` and `'''`.
    triple_quotes: bool,
    /// Strings may run over line ends.
    multiline_strings: bool,
    /// `'a` is a lifetime, not the start of a string (Rust).
    lifetimes: bool,
    /// `#` starts a comment only at the start of a word (shell: `$#`, `a#b` are not comments).
    comment_at_word_start: bool,
    /// `$name` and `${...}` are variables (shell).
    dollar_variables: bool,
    /// A string followed by `:` is an object key (JSON).
    string_keys: bool,
}

const PYTHON: Syntax = Syntax {
    keywords: &[
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "match", "case", "nonlocal", "not", "or", "pass", "raise", "return", "try",
        "while", "with", "yield",
    ],
    literals: &["True", "False", "None", "self"],
    line_comments: &["#"],
    block_comment: None,
    quotes: &['"', '\''],
    triple_quotes: true,
    multiline_strings: false,
    lifetimes: false,
    comment_at_word_start: false,
    dollar_variables: false,
    string_keys: false,
};

const JAVASCRIPT: Syntax = Syntax {
    keywords: &[
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "of",
        "private",
        "protected",
        "public",
        "readonly",
        "return",
        "static",
        "super",
        "switch",
        "throw",
        "try",
        "type",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "from",
        "as",
    ],
    literals: &[
        "true",
        "false",
        "null",
        "undefined",
        "this",
        "NaN",
        "Infinity",
    ],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\'', '`'],
    triple_quotes: false,
    multiline_strings: true,
    lifetimes: false,
    comment_at_word_start: false,
    dollar_variables: false,
    string_keys: false,
};

const RUST: Syntax = Syntax {
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "super", "trait", "type", "unsafe", "use",
        "where", "while",
    ],
    literals: &["true", "false", "self", "Self", "None", "Some", "Ok", "Err"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\''],
    triple_quotes: false,
    multiline_strings: true,
    lifetimes: true,
    comment_at_word_start: false,
    dollar_variables: false,
    string_keys: false,
};

const SHELL: Syntax = Syntax {
    keywords: &[
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
        "in", "function", "return", "exit", "export", "local", "readonly", "set", "unset",
        "source", "echo", "cd",
    ],
    literals: &["true", "false"],
    line_comments: &["#"],
    block_comment: None,
    quotes: &['"', '\''],
    triple_quotes: false,
    multiline_strings: true,
    lifetimes: false,
    comment_at_word_start: true,
    dollar_variables: true,
    string_keys: false,
};

const JSON: Syntax = Syntax {
    keywords: &[],
    literals: &["true", "false", "null"],
    line_comments: &[],
    block_comment: None,
    quotes: &['"'],
    triple_quotes: false,
    multiline_strings: false,
    lifetimes: false,
    comment_at_word_start: false,
    dollar_variables: false,
    string_keys: true,
};

/// What a token is, as the CSS class it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Plain,
    Keyword,
    Literal,
    String,
    Comment,
    Number,
    Key,
    Variable,
}

impl Token {
    fn class(self) -> Option<&'static str> {
        match self {
            Token::Plain => None,
            Token::Keyword => Some("tok-kw"),
            Token::Literal => Some("tok-lit"),
            Token::String => Some("tok-str"),
            Token::Comment => Some("tok-com"),
            Token::Number => Some("tok-num"),
            Token::Key => Some("tok-key"),
            Token::Variable => Some("tok-var"),
        }
    }
}

/// Plain code text as HTML with its tokens in spans; every piece of text is escaped.
pub fn highlight(code: &str, language: Language) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    for (token, text) in tokenize(code, language.syntax()) {
        match token.class() {
            Some(class) => {
                out.push_str("<span class=\"");
                out.push_str(class);
                out.push_str("\">");
                out.push_str(&escape(text));
                out.push_str("</span>");
            }
            None => out.push_str(&escape(text)),
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `code` into tokens; the pieces, concatenated, are exactly `code`.
fn tokenize<'a>(code: &'a str, syntax: &Syntax) -> Vec<(Token, &'a str)> {
    // Byte ranges first, so that runs of plain characters merge into one token.
    let mut ranges: Vec<(Token, usize, usize)> = Vec::new();
    let mut push = |token: Token, start: usize, len: usize| {
        if len == 0 {
            return;
        }
        match ranges.last_mut() {
            Some((Token::Plain, _, end)) if token == Token::Plain && *end == start => {
                *end = start + len
            }
            _ => ranges.push((token, start, start + len)),
        }
    };
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let Some(c) = rest.chars().next() else { break };
        let previous = code[..i].chars().next_back();
        let at_word_start = previous.is_none_or(|p| p.is_whitespace() || "(;|&".contains(p));

        // Comments.
        if let Some(prefix) = syntax
            .line_comments
            .iter()
            .find(|prefix| rest.starts_with(**prefix))
        {
            let len = if !syntax.comment_at_word_start || at_word_start {
                let end = rest.find('\n').unwrap_or(rest.len());
                push(Token::Comment, i, end);
                end
            } else {
                push(Token::Plain, i, prefix.len());
                prefix.len()
            };
            i += len;
            continue;
        }
        if let Some((open, close)) = syntax.block_comment {
            if let Some(after_open) = rest.strip_prefix(open) {
                let len = after_open
                    .find(close)
                    .map_or(rest.len(), |at| open.len() + at + close.len());
                push(Token::Comment, i, len);
                i += len;
                continue;
            }
        }

        // Strings.
        if syntax.triple_quotes && (rest.starts_with("\"\"\"") || rest.starts_with("'''")) {
            let delimiter = &rest[..3];
            let len = rest[3..]
                .find(delimiter)
                .map_or(rest.len(), |at| 3 + at + 3);
            push(Token::String, i, len);
            i += len;
            continue;
        }
        if syntax.quotes.contains(&c) {
            if c == '\'' && syntax.lifetimes {
                // Not a char literal: a lifetime or label (`'a`, `'outer`), left plain.
                let (token, len) =
                    rust_char_literal(rest).map_or((Token::Plain, 1), |len| (Token::String, len));
                push(token, i, len);
                i += len;
                continue;
            }
            let len = string_len(rest, c, syntax);
            let token = if syntax.string_keys && rest[len..].trim_start().starts_with(':') {
                Token::Key
            } else {
                Token::String
            };
            push(token, i, len);
            i += len;
            continue;
        }

        // Shell variables: `$name`, `${...}`, and the special `$#`, `$?`, `$1`...
        if syntax.dollar_variables && c == '$' {
            let after = &rest[1..];
            let len = if after.starts_with('{') {
                after.find('}').map_or(after.len(), |at| at + 1)
            } else if after.starts_with(|ch: char| "#?@*!$-0123456789".contains(ch)) {
                1
            } else {
                after
                    .char_indices()
                    .find(|(_, ch)| !is_word_char(*ch))
                    .map_or(after.len(), |(at, _)| at)
            };
            if len > 0 {
                push(Token::Variable, i, 1 + len);
                i += 1 + len;
                continue;
            }
        }

        // Numbers: a digit not inside a word (or a JSON minus sign before one).
        let starts_number = c.is_ascii_digit()
            || (syntax.string_keys
                && c == '-'
                && rest[1..].starts_with(|d: char| d.is_ascii_digit()));
        if starts_number && !previous.is_some_and(is_word_char) {
            let len = number_len(rest);
            push(Token::Number, i, len);
            i += len;
            continue;
        }

        // Words: keywords, literals, everything else plain.
        if is_word_char(c) {
            let len = rest
                .char_indices()
                .find(|(_, ch)| !is_word_char(*ch))
                .map_or(rest.len(), |(at, _)| at);
            let word = &rest[..len];
            let token = if syntax.keywords.contains(&word) {
                Token::Keyword
            } else if syntax.literals.contains(&word) {
                Token::Literal
            } else {
                Token::Plain
            };
            push(token, i, len);
            i += len;
            continue;
        }

        push(Token::Plain, i, c.len_utf8());
        i += c.len_utf8();
    }
    ranges
        .into_iter()
        .map(|(token, start, end)| (token, &code[start..end]))
        .collect()
}

/// Length in bytes of the string starting at `rest` (which starts with `quote`), closing quote
/// included; an unclosed string runs to the line's end (or the text's, where strings may span
/// lines).
fn string_len(rest: &str, quote: char, syntax: &Syntax) -> usize {
    // Shell single quotes have no escapes.
    let escapes = !(syntax.dollar_variables && quote == '\'');
    let mut chars = rest.char_indices().skip(1);
    while let Some((at, ch)) = chars.next() {
        if escapes && ch == '\\' {
            chars.next();
        } else if ch == quote {
            return at + ch.len_utf8();
        } else if ch == '\n' && !syntax.multiline_strings && quote != '`' {
            return at;
        }
    }
    rest.len()
}

/// `'x'`, `'\n'`, `'\u{1F600}'`: the length of a Rust char literal at the start of `rest`, if
/// there is one (otherwise the quote starts a lifetime).
fn rust_char_literal(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices().skip(1);
    let (_, first) = chars.next()?;
    if first == '\\' {
        let close = rest[2..].find('\'')?;
        let inner = &rest[2..2 + close];
        return (!inner.is_empty() && inner.len() <= 10 && !inner.contains('\n'))
            .then_some(2 + close + 1);
    }
    let (at, second) = chars.next()?;
    (second == '\'' && first != '\n').then_some(at + 1)
}

/// Digits, letters (hex, exponents, suffixes like `u32`), `_`, and a `.` followed by a digit
/// (so Rust's `0..10` stays a range).
fn number_len(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut len = usize::from(bytes.first() == Some(&b'-'));
    while len < bytes.len() {
        let b = bytes[len];
        let exponent_sign = (b == b'+' || b == b'-')
            && len > 0
            && matches!(bytes[len - 1], b'e' | b'E')
            && !rest.starts_with("0x");
        let decimal_point = b == b'.' && bytes.get(len + 1).is_some_and(u8::is_ascii_digit);
        if b.is_ascii_alphanumeric() || b == b'_' || exponent_sign || decimal_point {
            len += 1;
        } else {
            break;
        }
    }
    len
}

/// The plain text of sanitized code-block HTML, or `None` when it holds anything but text and
/// the entities the sanitizer writes (then the block is left alone).
fn decode_text(html: &str) -> Option<String> {
    if html.contains('<') || html.contains('>') {
        return None;
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let entity_end = rest[amp..].find(';')?;
        let entity = &rest[amp..amp + entity_end + 1];
        out.push(match entity {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            "&#39;" | "&#x27;" => '\'',
            "&nbsp;" => '\u{a0}',
            _ => return None,
        });
        rest = &rest[amp + entity.len()..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::markdown_to_safe_html;

    fn spans(code: &str, language: Language) -> Vec<(Token, String)> {
        tokenize(code, language.syntax())
            .into_iter()
            .filter(|(token, _)| *token != Token::Plain)
            .map(|(token, text)| (token, text.to_string()))
            .collect()
    }

    fn has(code: &str, language: Language, token: Token, text: &str) -> bool {
        spans(code, language)
            .iter()
            .any(|(t, s)| *t == token && s == text)
    }

    #[test]
    fn tokens_cover_the_text_exactly() {
        for (code, language) in [
            ("def f(x):\n    return x  # done\n", Language::Python),
            ("let s = `a\nb`; /* c */ // d", Language::JavaScript),
            ("fn f<'a>(x: &'a str) -> char { 'x' }", Language::Rust),
            ("echo \"$HOME\" # hi\nx=${A}", Language::Shell),
            ("{\"a\": [1, -2.5e3, true]}", Language::Json),
            ("unterminated \"string", Language::Python),
            ("é ✓ 'ü' \"日本\"", Language::Rust),
        ] {
            let joined: String = tokenize(code, language.syntax())
                .into_iter()
                .map(|(_, text)| text)
                .collect();
            assert_eq!(joined, code);
        }
    }

    #[test]
    fn python() {
        let code = "def fib(n):\n    \"\"\"Doc.\"\"\"\n    return None if n < 0 else 1.5  # note";
        assert!(has(code, Language::Python, Token::Keyword, "def"));
        assert!(has(code, Language::Python, Token::Keyword, "return"));
        assert!(has(code, Language::Python, Token::Literal, "None"));
        assert!(has(
            code,
            Language::Python,
            Token::String,
            "\"\"\"Doc.\"\"\""
        ));
        assert!(has(code, Language::Python, Token::Number, "1.5"));
        assert!(has(code, Language::Python, Token::Comment, "# note"));
        assert!(!has(code, Language::Python, Token::Keyword, "fib"));
    }

    #[test]
    fn rust_lifetimes_are_not_strings() {
        let code = "fn f<'a>(x: &'a str) -> char { let r = 0..10; 'x' }";
        assert!(has(code, Language::Rust, Token::String, "'x'"));
        assert!(!spans(code, Language::Rust)
            .iter()
            .any(|(t, s)| *t == Token::String && s.contains("a>")));
        assert!(has(code, Language::Rust, Token::Number, "0"));
        assert!(has(code, Language::Rust, Token::Number, "10"));
        assert!(has(
            "let c = '\\n';",
            Language::Rust,
            Token::String,
            "'\\n'"
        ));
    }

    #[test]
    fn shell_comments_start_words() {
        let code = "echo $# a#b \"$HOME\" 'no $var' # real comment";
        assert!(has(code, Language::Shell, Token::Variable, "$#"));
        assert!(has(code, Language::Shell, Token::String, "\"$HOME\""));
        let comments: Vec<String> = spans(code, Language::Shell)
            .into_iter()
            .filter(|(t, _)| *t == Token::Comment)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(comments, ["# real comment"]);
        assert!(has(code, Language::Shell, Token::String, "'no $var'"));
    }

    #[test]
    fn json_keys_and_values() {
        let code = "{\"name\": \"x\", \"n\": -1.5e+3, \"ok\": null}";
        assert!(has(code, Language::Json, Token::Key, "\"name\""));
        assert!(has(code, Language::Json, Token::String, "\"x\""));
        assert!(has(code, Language::Json, Token::Number, "-1.5e+3"));
        assert!(has(code, Language::Json, Token::Literal, "null"));
    }

    #[test]
    fn highlighted_blocks_stay_escaped() {
        let html = markdown_to_safe_html(
            "```python\nif a < b and c > d: print(\"<script>x</script>\") # &amp;\n```\n",
        );
        let highlighted = highlight_code_blocks(&html);
        assert!(
            highlighted.contains("<span class=\"tok-kw\">if</span>"),
            "{highlighted}"
        );
        assert!(
            highlighted.contains(
                "<span class=\"tok-str\">&quot;&lt;script&gt;x&lt;/script&gt;&quot;</span>"
            ),
            "{highlighted}"
        );
        assert!(
            highlighted.contains("<span class=\"tok-com\"># &amp;amp;</span>"),
            "{highlighted}"
        );
        assert!(!highlighted.contains("<script"), "{highlighted}");
        // Only our spans were added: removing them gives the sanitizer's text back, modulo the
        // quotes we escape and it does not.
        let stripped = highlighted
            .replace("<span class=\"tok-kw\">", "")
            .replace("<span class=\"tok-str\">", "")
            .replace("<span class=\"tok-com\">", "")
            .replace("</span>", "")
            .replace("&quot;", "\"");
        assert_eq!(stripped, html);
    }

    #[test]
    fn unknown_languages_and_odd_blocks_are_left_alone() {
        let html = markdown_to_safe_html("```haskell\nmain = pure ()\n```\n\n```\nplain\n```\n");
        assert_eq!(highlight_code_blocks(&html), html);
        let odd = "<pre><code class=\"language-python\">x &copy; y</code></pre>";
        assert_eq!(highlight_code_blocks(odd), odd);
        let unclosed = "<pre><code class=\"language-python\">x = 1";
        assert_eq!(highlight_code_blocks(unclosed), unclosed);
    }
}
