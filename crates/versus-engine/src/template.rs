//! Chat templates, rendered as transformers' `apply_chat_template(..., tokenize=False)` does.
//!
//! transformers compiles a template in a sandboxed Jinja2 environment with `trim_blocks` and
//! `lstrip_blocks` (and Jinja2's default `keep_trailing_newline=False`), the `loopcontrols`
//! extension, a `{% generation %}` tag, its own `tojson` filter, and the globals
//! `raise_exception` and `strftime_now`. This module sets up minijinja the same way, with
//! Python's string and dict methods (`.strip()`, `.items()`, ...) from minijinja-contrib.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;
use versus_core::message::{ContentPart, Message};

use crate::error::EngineError;

const TEMPLATE_NAME: &str = "chat_template";

/// Variables a chat template always gets from the renderer; `chat_template_kwargs` cannot set
/// them (transformers passes them as keywords too, and Python refuses duplicates).
const RESERVED_VARIABLES: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];

/// The most steps (minijinja instructions) one rendering may take. Real chat templates take a few
/// thousand per message; this leaves room for long conversations and stops a runaway template in
/// about a second.
pub const TEMPLATE_FUEL: u64 = 20_000_000;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    model_name: String,
    /// The file (or GGUF field) the template came from, named when it runs out of fuel.
    origin: Option<String>,
    /// Special tokens the template sees as variables (`bos_token`, `eos_token`, ...).
    special_tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("model_name", &self.model_name)
            .field("special_tokens", &self.special_tokens)
            .finish_non_exhaustive()
    }
}

/// The message of `raise_exception(...)`, kept as the error's source so that the rendering error
/// can show it alone.
#[derive(Debug)]
struct RaisedByTemplate(String);

impl std::fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

impl ChatTemplate {
    /// Compiles `source`; `model_name` names the model in errors.
    pub fn new(
        source: &str,
        model_name: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<ChatTemplate, EngineError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Jinja2's default, which transformers keeps: one newline at the end of the template is
        // dropped (the Llama 3.2 template ends with one).
        env.set_keep_trailing_newline(false);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // A template is code from the model's files: bound the work one rendering may do.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", tojson_filter);
        env.add_filter("trim", trim_filter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(TEMPLATE_NAME, rewrite_generation_tags(source))
            .map_err(|e| template_error(model_name, &e))?;

        let special_tokens = [("bos_token", bos_token), ("eos_token", eos_token)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name.to_string(), value.to_string())))
            .collect();
        Ok(ChatTemplate {
            env,
            model_name: model_name.to_string(),
            origin: None,
            special_tokens,
        })
    }

    /// The chat template of a tokenizer, with all its special tokens as variables (transformers
    /// passes its whole special tokens map), or `None` when it has none.
    pub fn from_tokenizer(
        tokenizer: &crate::tokenizer::Tokenizer,
        model_name: &str,
    ) -> Result<Option<ChatTemplate>, EngineError> {
        let Some(source) = tokenizer.chat_template() else {
            return Ok(None);
        };
        let mut template = ChatTemplate::new(source, model_name, None, None)?;
        template.origin = tokenizer.chat_template_origin().map(str::to_string);
        for (name, value) in tokenizer.template_special_tokens() {
            template = template.with_variable(name, &value);
        }
        Ok(Some(template))
    }

    /// Names the file (or GGUF field) the template came from, for its errors.
    pub fn with_origin(mut self, origin: &str) -> ChatTemplate {
        self.origin = Some(origin.to_string());
        self
    }

    /// Adds (or replaces) a special-token variable, e.g. `unk_token`.
    pub fn with_variable(mut self, name: &str, value: &str) -> ChatTemplate {
        self.special_tokens.retain(|(known, _)| known != name);
        self.special_tokens
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The model named in errors.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Renders `messages`; `extra` holds `chat_template_kwargs` (e.g. Llama 3's `date_string`),
    /// which may override the special tokens but not `messages`, `tools`, `documents` or
    /// `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, Json>,
    ) -> Result<String, EngineError> {
        let mut message_values = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            if message
                .content
                .iter()
                .any(|part| matches!(part, ContentPart::Image { .. }))
            {
                return Err(self.error(format!(
                    "model {} reads text only, and message {} has an image",
                    self.model_name,
                    index + 1
                )));
            }
            message_values.push(Value::from_iter([
                ("role", Value::from(message.role.as_str())),
                ("content", Value::from(message.text_content())),
            ]));
        }

        let mut context: Vec<(String, Value)> = self
            .special_tokens
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
            .collect();
        for (name, value) in extra {
            if RESERVED_VARIABLES.contains(&name.as_str()) {
                return Err(self.error(format!(
                    "chat_template_kwargs cannot set `{name}`, which the renderer sets"
                )));
            }
            context.retain(|(known, _)| known != name);
            context.push((name.clone(), Value::from_serialize(value)));
        }
        context.push(("messages".to_string(), Value::from(message_values)));
        // transformers passes `tools=None` and `documents=None` when there are none, so they are
        // defined (as none) for templates that test `tools is not none`.
        context.push(("tools".to_string(), Value::from(())));
        context.push(("documents".to_string(), Value::from(())));
        context.push((
            "add_generation_prompt".to_string(),
            Value::from(add_generation_prompt),
        ));

        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error(&self.model_name, &e))?;
        template.render(Value::from_iter(context)).map_err(|e| {
            if e.kind() == ErrorKind::OutOfFuel {
                let origin = self.origin.as_deref().unwrap_or("the model's files");
                return self.error(format!(
                    "rendering stopped after {TEMPLATE_FUEL} steps (a loop that does not end, or one far too large for a chat prompt); the template is in {origin}"
                ));
            }
            template_error(&self.model_name, &e)
        })
    }

    fn error(&self, reason: String) -> EngineError {
        EngineError::Template {
            model: self.model_name.clone(),
            reason,
        }
    }
}

/// A rendering or syntax error. `raise_exception(msg)` gives just `msg`; other errors keep
/// minijinja's description and the template line.
fn template_error(model_name: &str, error: &Error) -> EngineError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(raised) = current.downcast_ref::<RaisedByTemplate>() {
            return EngineError::Template {
                model: model_name.to_string(),
                reason: raised.0.clone(),
            };
        }
        source = current.source();
    }
    EngineError::Template {
        model: model_name.to_string(),
        reason: error.to_string(),
    }
}

/// transformers' `raise_exception` global: templates call it to refuse a conversation (e.g. a
/// system message for a model without a system role).
fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message.clone())
        .with_source(RaisedByTemplate(message)))
}

/// transformers' `strftime_now` global: the local time, formatted with strftime directives.
fn strftime_now(format: String) -> Result<String, Error> {
    let items: Vec<chrono::format::Item<'_>> =
        chrono::format::StrftimeItems::new(&format).collect();
    if items
        .iter()
        .any(|item| matches!(item, chrono::format::Item::Error))
    {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: invalid format {format:?}"),
        ));
    }
    let now = chrono::Local::now();
    let mut out = String::new();
    write!(out, "{}", now.format_with_items(items.into_iter())).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: cannot format the date with {format:?}"),
        )
    })?;
    Ok(out)
}

/// Prints values the way Jinja2 prints Python values: `None`, `True`, `False`, and floats as
/// Python's `repr` writes them. Everything else is minijinja's default.
fn python_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    let text = match value.kind() {
        ValueKind::None => Some("None".to_string()),
        ValueKind::Bool => Some(if value.is_true() { "True" } else { "False" }.to_string()),
        ValueKind::Number if !value.is_integer() => f64::try_from(value.clone())
            .ok()
            .map(|number| python_float_repr(number, false)),
        _ => None,
    };
    match text {
        Some(text) => out.write_str(&text).map_err(Error::from),
        None => minijinja::escape_formatter(out, state, value),
    }
}

/// Jinja2's `trim`: Python's `str.strip()`, which also strips the ASCII separators
/// U+001C..U+001F that Rust's `trim` keeps; `chars` strips those characters instead.
fn trim_filter(value: String, chars: Option<String>) -> String {
    match chars {
        Some(chars) => value.trim_matches(|c| chars.contains(c)).to_string(),
        None => value.trim_matches(is_python_whitespace).to_string(),
    }
}

fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`. Unlike Jinja2's own `tojson` it does not escape
/// HTML characters, and it writes `", "` / `": "` between items like Python.
fn tojson_filter(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;

    let indent = match indent {
        None => None,
        Some(indent) if indent.is_none() => None,
        Some(indent) if indent.is_integer() => {
            // Python: `" " * indent`, so a negative indent is an empty one.
            let width = indent.as_i64().unwrap_or(0).max(0);
            Some(" ".repeat(usize::try_from(width).unwrap_or(0)))
        }
        Some(indent) => match indent.as_str() {
            Some(text) => Some(text.to_string()),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer, a string or none",
                ))
            }
        },
    };
    let (item_separator, key_separator) = match separators {
        Some(separators) if !separators.is_none() => {
            let parts: Vec<Value> = separators.try_iter()?.collect();
            match parts.as_slice() {
                [item, key] => match (item.as_str(), key.as_str()) {
                    (Some(item), Some(key)) => (item.to_string(), key.to_string()),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "tojson: separators must be two strings",
                        ))
                    }
                },
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        // Python's defaults: no space after commas when indenting (lines end there instead).
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let style = JsonStyle {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_separator,
        key_separator,
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    style.write_value(&mut out, value, 0)?;
    Ok(out)
}

/// The options of Python's `json.dumps`.
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

impl JsonStyle {
    fn write_value(&self, out: &mut String, value: &Value, depth: usize) -> Result<(), Error> {
        match value.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if value.is_integer() {
                    out.push_str(&value.to_string());
                } else {
                    let number = f64::try_from(value.clone())?;
                    out.push_str(&python_float_repr(number, true));
                }
            }
            ValueKind::String => self.write_string(out, value.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.write_container(out, '[', ']', depth, items.len(), |out, index| {
                    self.write_value(out, &items[index], depth + 1)
                })?;
            }
            ValueKind::Map => {
                let mut entries = Vec::new();
                for key in value.try_iter()? {
                    let item = value.get_item(&key)?;
                    entries.push((json_key(&key)?, item));
                }
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.write_container(out, '{', '}', depth, entries.len(), |out, index| {
                    let (key, item) = &entries[index];
                    self.write_string(out, key);
                    out.push_str(&self.key_separator);
                    self.write_value(out, item, depth + 1)
                })?;
            }
            kind => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: a value of type {kind} is not JSON serializable"),
                ))
            }
        }
        Ok(())
    }

    fn write_container(
        &self,
        out: &mut String,
        open: char,
        close: char,
        depth: usize,
        len: usize,
        mut write_item: impl FnMut(&mut String, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(open);
        if len == 0 {
            out.push(close);
            return Ok(());
        }
        for index in 0..len {
            if index > 0 {
                out.push_str(&self.item_separator);
            }
            if let Some(indent) = &self.indent {
                out.push('\n');
                out.push_str(&indent.repeat(depth + 1));
            }
            write_item(out, index)?;
        }
        if let Some(indent) = &self.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth));
        }
        out.push(close);
        Ok(())
    }

    /// A JSON string as Python writes it: `\n`, `\r`, `\t`, `\b`, `\f`, `\"`, `\\`, other control
    /// characters as lowercase `\u00xx`, and with `ensure_ascii` everything past ASCII as
    /// `\uxxxx` (UTF-16 surrogate pairs beyond the BMP).
    fn write_string(&self, out: &mut String, text: &str) {
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if self.ensure_ascii && !(' '..='~').contains(&c) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A mapping key as `json.dumps` writes it: strings as they are, numbers, booleans and None
/// converted to their JSON text.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Number if key.is_integer() => Ok(key.to_string()),
        ValueKind::Number => Ok(python_float_repr(f64::try_from(key.clone())?, true)),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_string()),
        ValueKind::None => Ok("null".to_string()),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation for
/// 1e-4 <= |x| < 1e16 and scientific notation (`1e-05`, `1.5e+16`) otherwise. `json` spells the
/// non-finite values `NaN`, `Infinity` and `-Infinity`; `repr` spells them `nan`, `inf`, `-inf`.
fn python_float_repr(number: f64, json: bool) -> String {
    if number.is_nan() {
        return if json { "NaN" } else { "nan" }.to_string();
    }
    if number.is_infinite() {
        let text = match (json, number > 0.0) {
            (true, true) => "Infinity",
            (true, false) => "-Infinity",
            (false, true) => "inf",
            (false, false) => "-inf",
        };
        return text.to_string();
    }
    if number == 0.0 {
        return if number.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.2345e-7`.
    let scientific = format!("{number:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
            format!("0.{zeros}{digits}")
        } else {
            let point = usize::try_from(point).unwrap_or(0);
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// Replaces transformers' `{% generation %}` / `{% endgeneration %}` tags (which only mark the
/// assistant's tokens for training masks) with an always-true `if` block. The body renders
/// unchanged, and the whitespace control of the tag (`{%-`, `-%}`, trim_blocks, lstrip_blocks)
/// applies as it does to the original block tag.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag_and_after = &rest[start..];
        let Some(end) = tag_and_after.find("%}") else {
            out.push_str(tag_and_after);
            return out;
        };
        let tag = &tag_and_after[..end + 2];
        let inner = &tag[2..tag.len() - 2];
        let (open_mark, inner) = split_whitespace_mark_start(inner);
        let (inner, close_mark) = split_whitespace_mark_end(inner);
        match inner.trim() {
            "generation" => {
                let _ = write!(out, "{{%{open_mark} if true {close_mark}%}}");
            }
            "endgeneration" => {
                let _ = write!(out, "{{%{open_mark} endif {close_mark}%}}");
            }
            _ => out.push_str(tag),
        }
        rest = &tag_and_after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn split_whitespace_mark_start(inner: &str) -> (&str, &str) {
    match inner.chars().next() {
        Some(mark @ ('-' | '+')) => inner.split_at(mark.len_utf8()),
        _ => ("", inner),
    }
}

fn split_whitespace_mark_end(inner: &str) -> (&str, &str) {
    match inner.chars().last() {
        Some(mark @ ('-' | '+')) => inner.split_at(inner.len() - mark.len_utf8()),
        _ => (inner, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (1e100, "1e+100"),
            (0.1 + 0.2, "0.30000000000000004"),
            (100.0, "100.0"),
        ];
        for (number, expected) in cases {
            assert_eq!(python_float_repr(number, true), expected, "{number}");
        }
        assert_eq!(python_float_repr(f64::NAN, true), "NaN");
        assert_eq!(python_float_repr(f64::NEG_INFINITY, false), "-inf");
    }

    #[test]
    fn generation_tags_become_if_blocks() {
        assert_eq!(
            rewrite_generation_tags("a{%- generation -%}b{% endgeneration %}c{{ x }}{% if y %}"),
            "a{%- if true -%}b{% endif %}c{{ x }}{% if y %}"
        );
        assert_eq!(rewrite_generation_tags("no tags {%"), "no tags {%");
    }

    #[test]
    fn trim_strips_python_whitespace() {
        assert_eq!(trim_filter("\u{1f} a \n".to_string(), None), "a");
        assert_eq!(trim_filter("xxaxx".to_string(), Some("x".to_string())), "a");
    }
}
