//! Chat templates: the model's Jinja template rendered with minijinja so that
//! the output is exactly what transformers' `apply_chat_template(messages,
//! tokenize=False, add_generation_prompt=...)` produces.
//!
//! The environment mirrors transformers' (`ImmutableSandboxedEnvironment` with
//! `trim_blocks=True`, `lstrip_blocks=True`, loop controls):
//! - Python string / dict methods (`.strip()`, `.startswith()`, `.items()`,
//!   ...) through minijinja-contrib's `pycompat`;
//! - `raise_exception(msg)` (rendering fails with that message),
//!   `strftime_now(fmt)` (local time, like `datetime.now().strftime`);
//! - `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False,
//!   indent=None, separators=None, sort_keys=False)`, i.e. `", "` / `": "`
//!   separators and no HTML escaping (minijinja's own `tojson` differs);
//! - `None` / `True` / `False` print as Python prints them;
//! - `{% generation %}` blocks (transformers' assistant-mask extension) render
//!   their body;
//! - variables: `messages`, `tools` (none unless given), `documents` (none),
//!   `add_generation_prompt`, the named special tokens that exist
//!   (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...), and any extra
//!   keyword (`enable_thinking`, `date_string`, ...). Reasoning fields are
//!   aliased as transformers does (`reasoning_content` / `thinking`).
//!
//! Built-in templates ([`ChatTemplate::builtin`]) for models that ship none:
//! chatml, llama2, llama3, mistral, qwen (Qwen2.5, with its default system
//! prompt), qwen3, gemma, phi3, alpaca, plain. Each comes with the strings
//! that end an assistant turn ([`ChatTemplate::stop_tokens`]).

use anyhow::{anyhow, Context, Result};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use serde::{Deserialize, Serialize};

/// One chat message. Templates also accept richer messages (tool calls,
/// content parts): pass `serde_json::Value`s to [`ChatTemplate::render`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}

/// What a template sees besides the messages.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// End with the header of an assistant turn (prompting the model to answer).
    pub add_generation_prompt: bool,
    /// Named special tokens (`bos_token`, `eos_token`, `unk_token`,
    /// `pad_token`, ...); only those present are defined in the template.
    pub special_tokens: Vec<(String, String)>,
    /// Tool schemas (OpenAI function format); `None` renders as Python's None.
    pub tools: Option<serde_json::Value>,
    /// Extra keyword arguments (`enable_thinking`, `date_string`, ...).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A built-in template: its name, source, and the strings that end a turn.
struct Builtin {
    name: &'static str,
    source: &'static str,
    stops: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "chatml",
        source: include_str!("templates/chatml.jinja"),
        stops: &["<|im_end|>"],
    },
    Builtin {
        name: "llama2",
        source: include_str!("templates/llama2.jinja"),
        stops: &["</s>"],
    },
    Builtin {
        name: "llama3",
        source: include_str!("templates/llama3.jinja"),
        stops: &["<|eot_id|>", "<|end_of_text|>"],
    },
    Builtin {
        name: "mistral",
        source: include_str!("templates/mistral.jinja"),
        stops: &["</s>"],
    },
    Builtin {
        name: "qwen",
        source: include_str!("templates/qwen.jinja"),
        stops: &["<|im_end|>", "<|endoftext|>"],
    },
    Builtin {
        name: "qwen3",
        source: include_str!("templates/qwen3.jinja"),
        stops: &["<|im_end|>", "<|endoftext|>"],
    },
    Builtin {
        name: "gemma",
        source: include_str!("templates/gemma.jinja"),
        stops: &["<end_of_turn>", "<eos>"],
    },
    Builtin {
        name: "phi3",
        source: include_str!("templates/phi3.jinja"),
        stops: &["<|end|>", "<|endoftext|>"],
    },
    Builtin {
        name: "alpaca",
        source: include_str!("templates/alpaca.jinja"),
        stops: &["### Instruction:"],
    },
    Builtin {
        name: "plain",
        source: include_str!("templates/plain.jinja"),
        stops: &[],
    },
];

/// Strings that end an assistant turn in well-known template families. A
/// template that writes one of these makes it a stop token of the model.
pub const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|END_OF_TURN_TOKEN|>",
    "<|return|>",
    "<|call|>",
];

/// The source of a built-in template as rendered (the file minus its final
/// newline, which Jinja drops anyway).
fn builtin_source(b: &Builtin) -> &'static str {
    b.source.strip_suffix('\n').unwrap_or(b.source)
}

/// A compiled chat template.
pub struct ChatTemplate {
    name: Option<String>,
    source: String,
    stop_tokens: Vec<String>,
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("name", &self.name)
            .field("stop_tokens", &self.stop_tokens)
            .finish_non_exhaustive()
    }
}

impl Clone for ChatTemplate {
    fn clone(&self) -> Self {
        // Recompiling cannot fail: this source compiled before.
        let mut t = ChatTemplate::new(&self.source).expect("template compiled before");
        t.name = self.name.clone();
        t.stop_tokens = self.stop_tokens.clone();
        t
    }
}

const TEMPLATE_NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compile a Jinja chat template (as found in `tokenizer_config.json`,
    /// `chat_template.jinja` or GGUF metadata). Its stop tokens are the
    /// [`END_OF_TURN_TOKENS`] it writes.
    pub fn new(source: &str) -> Result<ChatTemplate> {
        let mut env = environment();
        env.add_template_owned(TEMPLATE_NAME, strip_generation_tags(source))
            .map_err(|e| anyhow!("chat template does not compile: {e:#}"))?;
        let stop_tokens = END_OF_TURN_TOKENS
            .iter()
            .filter(|t| source.contains(*t))
            .map(|t| t.to_string())
            .collect();
        Ok(ChatTemplate {
            name: None,
            source: source.to_owned(),
            stop_tokens,
            env,
        })
    }

    /// A built-in template by name (see [`ChatTemplate::builtin_names`]);
    /// `none` is an alias of `plain`.
    pub fn builtin(name: &str) -> Result<ChatTemplate> {
        let key = match name.to_ascii_lowercase().as_str() {
            "none" | "raw" => "plain".to_string(),
            "qwen2" | "qwen2.5" | "qwen25" => "qwen".to_string(),
            "llama-2" => "llama2".to_string(),
            "llama-3" | "llama3.1" | "llama3.2" => "llama3".to_string(),
            "gemma2" | "gemma3" => "gemma".to_string(),
            "phi-3" => "phi3".to_string(),
            other => other.to_string(),
        };
        let b = BUILTINS.iter().find(|b| b.name == key).with_context(|| {
            format!(
                "unknown chat template {name:?}; built-in templates: {}",
                Self::builtin_names().join(", ")
            )
        })?;
        let mut t = ChatTemplate::new(builtin_source(b))?;
        t.name = Some(b.name.to_string());
        t.stop_tokens = b.stops.iter().map(|s| s.to_string()).collect();
        Ok(t)
    }

    /// Names of the built-in templates.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTINS.iter().map(|b| b.name).collect()
    }

    /// The source of a built-in template.
    pub fn builtin_source(name: &str) -> Option<&'static str> {
        BUILTINS.iter().find(|b| b.name == name).map(builtin_source)
    }

    /// The built-in's name, for a built-in template.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Strings that end an assistant turn under this template (token ids
    /// when the vocabulary has them as tokens, stop strings otherwise).
    pub fn stop_tokens(&self) -> &[String] {
        &self.stop_tokens
    }

    /// Render a conversation. `messages` are anything serializable to objects
    /// with `role` and `content` ([`Message`], `serde_json::Value`, ...).
    pub fn render<M: Serialize>(&self, messages: &[M], opts: &RenderOptions) -> Result<String> {
        let mut msgs = Vec::with_capacity(messages.len());
        for m in messages {
            let v = serde_json::to_value(m).context("serializing a chat message")?;
            msgs.push(alias_reasoning(v));
        }
        let mut ctx = serde_json::Map::new();
        for (k, v) in &opts.special_tokens {
            ctx.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        for (k, v) in &opts.extra {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("messages".into(), serde_json::Value::Array(msgs));
        ctx.insert(
            "tools".into(),
            opts.tools.clone().unwrap_or(serde_json::Value::Null),
        );
        ctx.entry("documents").or_insert(serde_json::Value::Null);
        ctx.insert(
            "add_generation_prompt".into(),
            serde_json::Value::Bool(opts.add_generation_prompt),
        );
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| anyhow!("{e:#}"))?;
        tmpl.render(Value::from_serialize(&ctx))
            .map_err(|e| anyhow!("rendering the chat template: {}", describe(&e)))
    }
}

fn describe(e: &Error) -> String {
    if e.kind() == ErrorKind::InvalidOperation {
        if let Some(d) = e.detail() {
            return d.to_string();
        }
    }
    format!("{e:#}")
}

/// transformers copies a message's reasoning (`reasoning_content`,
/// `thinking` or `reasoning`) to `thinking` and `reasoning_content`.
fn alias_reasoning(v: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(m) = v else {
        return v;
    };
    let reasoning = ["reasoning_content", "thinking", "reasoning"]
        .iter()
        .find_map(|k| m.get(*k).filter(|x| !x.is_null()).cloned());
    match reasoning {
        None => serde_json::Value::Object(m),
        Some(r) => {
            let mut out = serde_json::Map::new();
            out.insert("thinking".into(), r.clone());
            for (k, v) in m {
                out.insert(k, v);
            }
            out.insert("reasoning_content".into(), r);
            serde_json::Value::Object(out)
        }
    }
}

/// Replace transformers' `{% generation %}` / `{% endgeneration %}` tags by an
/// always-true `if`, keeping their whitespace control.
fn strip_generation_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos]);
        let tag = &rest[pos..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let lead = if inner.starts_with('-') || inner.starts_with('+') {
            &inner[..1]
        } else {
            ""
        };
        let trail = if inner.ends_with('-') || inner.ends_with('+') {
            &inner[inner.len() - 1..]
        } else {
            ""
        };
        let word = inner[lead.len()..inner.len() - trail.len()].trim();
        match word {
            "generation" => out.push_str(&format!("{{%{lead} if true {trail}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{lead} endif {trail}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_filter("tojson", tojson);
    env.set_formatter(python_formatter);
    env
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(fmt: String) -> Result<Value, Error> {
    use std::fmt::Write;
    let mut s = String::new();
    write!(s, "{}", chrono::Local::now().format(&fmt)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: bad format {fmt:?}"),
        )
    })?;
    Ok(Value::from(s))
}

/// Print values as Python does: None, True, False.
fn python_formatter(
    out: &mut minijinja::Output,
    state: &State,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.write_str("None").map_err(Error::from),
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(Error::from),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`.
fn tojson(value: Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(" ".repeat(n.max(0) as usize)),
            None => Some(v.as_str().unwrap_or("").to_string()),
        },
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match &separators {
        Some(s) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let mut out = String::new();
    let cfg = JsonCfg {
        indent,
        item_sep,
        key_sep,
        sort_keys,
        ensure_ascii,
    };
    write_json(&mut out, &value, &cfg, 0)?;
    Ok(Value::from_safe_string(out))
}

struct JsonCfg {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

fn json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{:e}", f);
        let (mant, exp) = s.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{:?}", f);
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

fn newline(out: &mut String, cfg: &JsonCfg, level: usize) {
    if let Some(ind) = &cfg.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn write_json(out: &mut String, v: &Value, cfg: &JsonCfg, level: usize) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                let f = f64::try_from(v.clone())?;
                out.push_str(&python_float(f));
            }
        }
        ValueKind::String => json_string(out, v.as_str().unwrap_or(""), cfg.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&cfg.item_sep);
                }
                newline(out, cfg, level + 1);
                write_json(out, item, cfg, level + 1)?;
            }
            newline(out, cfg, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if cfg.sort_keys {
                keys.sort();
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&cfg.item_sep);
                }
                newline(out, cfg, level + 1);
                match k.as_str() {
                    Some(s) => json_string(out, s, cfg.ensure_ascii),
                    None => json_string(out, &k.to_string(), cfg.ensure_ascii),
                }
                out.push_str(&cfg.key_sep);
                let item = v.get_item(k)?;
                write_json(out, &item, cfg, level + 1)?;
            }
            newline(out, cfg, level);
            out.push('}');
        }
        _ => json_string(out, &v.to_string(), cfg.ensure_ascii),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(gen: bool) -> RenderOptions {
        RenderOptions {
            add_generation_prompt: gen,
            special_tokens: vec![
                ("bos_token".into(), "<s>".into()),
                ("eos_token".into(), "</s>".into()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn chatml_renders() {
        let t = ChatTemplate::builtin("chatml").unwrap();
        let s = t
            .render(&[Message::system("S"), Message::user("Hi")], &opts(true))
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(t.stop_tokens(), ["<|im_end|>"]);
    }

    #[test]
    fn raise_exception_is_an_error_with_its_message() {
        let t = ChatTemplate::builtin("llama2").unwrap();
        let err = t
            .render(&[Message::assistant("a"), Message::user("b")], &opts(false))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("Conversation roles must alternate"),
            "{err:#}"
        );
    }

    #[test]
    fn python_values_print_like_python() {
        let t = ChatTemplate::new("{{ none }}|{{ true }}|{{ x }}|{{ tools }}").unwrap();
        let mut o = opts(false);
        o.extra.insert("x".into(), serde_json::json!(false));
        assert_eq!(
            t.render::<Message>(&[], &o).unwrap(),
            "None|True|False|None"
        );
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let t = ChatTemplate::new("{{ x | tojson }}~{{ x | tojson(indent=2) }}").unwrap();
        let mut o = opts(false);
        o.extra.insert(
            "x".into(),
            serde_json::json!({"b": [1, 2.5, "é<&>\n"], "a": null, "c": {}, "d": true, "e": 1.0}),
        );
        let s = t.render::<Message>(&[], &o).unwrap();
        assert_eq!(
            s,
            "{\"b\": [1, 2.5, \"é<&>\\n\"], \"a\": null, \"c\": {}, \"d\": true, \"e\": 1.0}~{\n  \"b\": [\n    1,\n    2.5,\n    \"é<&>\\n\"\n  ],\n  \"a\": null,\n  \"c\": {},\n  \"d\": true,\n  \"e\": 1.0\n}"
        );
    }

    #[test]
    fn generation_tags_render_their_body() {
        let t = ChatTemplate::new("a{%- generation -%} b {%- endgeneration %}c").unwrap();
        assert_eq!(t.render::<Message>(&[], &opts(false)).unwrap(), "abc");
    }

    #[test]
    fn loop_controls_and_python_methods() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if loop.index0 == 1 %}{% break %}{% endif %}{{ m.content.strip().upper() }}{{ m.content.startswith(' x') }}{% endfor %}",
        )
        .unwrap();
        let s = t
            .render(&[Message::user(" xy "), Message::user("z")], &opts(false))
            .unwrap();
        assert_eq!(s, "XYTrue");
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1e20), "1e+20");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(-2.5), "-2.5");
    }

    #[test]
    fn unknown_builtin_lists_the_known_ones() {
        let err = ChatTemplate::builtin("nope").unwrap_err().to_string();
        assert!(err.contains("chatml") && err.contains("qwen3"), "{err}");
    }
}
