//! Row layouts -> conversations (a list of role/content messages).
//!
//! Recognised per row, after `--columns` renamed the source columns
//! (a mapped name replaces the original key), in this order:
//!
//! - **messages**: `messages: [{role, content}, ...]` (OpenAI roles; an
//!   optional leading `system` message).
//! - **sharegpt**: `conversations: [{from, value}, ...]` with `human` /
//!   `gpt` / `system` (also `user` / `assistant`), and an optional top-level
//!   `system` column.
//! - **alpaca**: `instruction`, optional `input`, `output`, optional
//!   `system`. The user turn is `instruction + "\n" + input` when `input` is
//!   not empty (as ms-swift builds it).
//! - **query-response**: `query`, `response`, optional `history` (a list of
//!   `[query, response]` pairs, oldest first) and `system`. `prompt` /
//!   `question` stand for `query`, and `completion` / `answer` for
//!   `response`, when the standard name is absent.
//!
//! In `messages` and `conversations` either key pair is accepted per turn
//! (`role`/`content` or `from`/`value`), and content given as OpenAI content
//! parts (`[{"type": "text", "text": ...}]`) is joined. Cells holding JSON
//! text (CSV) are parsed. A row without a system message takes the row's
//! `system` column, else the default system prompt (`--system`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::formats::type_name;
use crate::tokenizer::Message;

/// A row layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    Messages,
    ShareGpt,
    Alpaca,
    QueryResponse,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Messages => "messages",
            Layout::ShareGpt => "sharegpt",
            Layout::Alpaca => "alpaca",
            Layout::QueryResponse => "query-response",
        }
    }
}

/// What is wrong with a row: the field (a path such as
/// `messages[1].content`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

pub(crate) fn ferr(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A conversation read from a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub layout: Layout,
    pub messages: Vec<Message>,
}

impl Conversation {
    /// Whether an assistant turn is empty (or whitespace).
    pub fn has_empty_answer(&self) -> bool {
        self.messages
            .iter()
            .any(|m| m.role == "assistant" && m.content.trim().is_empty())
    }
}

/// Apply a `--columns` mapping (source name -> standard name).
pub fn rename_columns(
    row: &Map<String, Value>,
    columns: &BTreeMap<String, String>,
) -> Map<String, Value> {
    if columns.is_empty() {
        return row.clone();
    }
    let mut out = Map::new();
    // Unmapped keys first, so that a mapped column wins over a same-named one.
    for (k, v) in row {
        if !columns.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in row {
        if let Some(to) = columns.get(k) {
            out.insert(to.clone(), v.clone());
        }
    }
    out
}

/// Which layout a row has, if any.
pub fn detect(row: &Map<String, Value>) -> Option<Layout> {
    let has = |k: &str| row.get(k).is_some_and(|v| !v.is_null());
    if has("messages") {
        Some(Layout::Messages)
    } else if has("conversations") || has("conversation") {
        Some(Layout::ShareGpt)
    } else if has("instruction") || (has("output") && !has("response")) {
        Some(Layout::Alpaca)
    } else if (has("query") || has("prompt") || has("question"))
        && (has("response") || has("completion") || has("answer"))
    {
        Some(Layout::QueryResponse)
    } else {
        None
    }
}

/// Read a row (columns already renamed) as a conversation. `default_system`
/// is used when the row has no system message.
pub fn to_conversation(
    row: &Map<String, Value>,
    default_system: Option<&str>,
) -> Result<Conversation, FieldError> {
    let layout = detect(row).ok_or_else(|| {
        let cols: Vec<&str> = row.keys().map(String::as_str).collect();
        ferr(
            "(row)",
            format!(
                "no known layout: expected `messages`, `conversations`, `instruction` + `output`, \
                 or `query` + `response`; the row has {}. Map your column names with --columns, \
                 e.g. '{{\"question\": \"query\", \"answer\": \"response\"}}'",
                if cols.is_empty() {
                    "no columns".to_string()
                } else {
                    format!("columns {}", cols.join(", "))
                }
            ),
        )
    })?;
    let mut messages = match layout {
        Layout::Messages => turns(row, "messages")?,
        Layout::ShareGpt => {
            let key = if row.contains_key("conversations") {
                "conversations"
            } else {
                "conversation"
            };
            turns(row, key)?
        }
        Layout::Alpaca => alpaca(row)?,
        Layout::QueryResponse => query_response(row)?,
    };
    if messages.first().is_none_or(|m| m.role != "system") {
        let system = optional_string(row, "system")?
            .filter(|s| !s.is_empty())
            .or(default_system.map(str::to_owned));
        if let Some(s) = system {
            messages.insert(0, Message::system(s));
        }
    }
    if !messages.iter().any(|m| m.role == "assistant") {
        let field = match layout {
            Layout::Messages => "messages",
            Layout::ShareGpt => "conversations",
            Layout::Alpaca => "output",
            Layout::QueryResponse => "response",
        };
        return Err(ferr(field, "the conversation has no assistant turn"));
    }
    Ok(Conversation { layout, messages })
}

/// A value that may be JSON text (a CSV cell) holding a list.
fn as_list<'a>(
    v: &'a Value,
    field: &str,
    buf: &'a mut Option<Value>,
) -> Result<&'a Vec<Value>, FieldError> {
    match v {
        Value::Array(a) => Ok(a),
        Value::String(s) if s.trim_start().starts_with('[') => {
            let parsed: Value = serde_json::from_str(s).map_err(|e| {
                ferr(
                    field,
                    format!("expected a list; the text is not valid JSON: {e}"),
                )
            })?;
            *buf = Some(parsed);
            match buf.as_ref() {
                Some(Value::Array(a)) => Ok(a),
                _ => Err(ferr(field, "expected a list")),
            }
        }
        other => Err(ferr(
            field,
            format!("expected a list, found {}", type_name(other)),
        )),
    }
}

fn normalize_role(role: &str) -> Option<&'static str> {
    Some(match role.to_ascii_lowercase().as_str() {
        "user" | "human" => "user",
        "assistant" | "gpt" | "bot" | "model" | "chatgpt" => "assistant",
        "system" => "system",
        "tool" | "function" | "observation" | "ipython" => "tool",
        _ => return None,
    })
}

/// Message content: a string, or OpenAI content parts whose texts are joined.
fn content_of(v: Option<&Value>, field: &str) -> Result<String, FieldError> {
    match v {
        None => Err(ferr(field, "missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                match p.get("text").and_then(Value::as_str) {
                    Some(t) if p.get("type").and_then(Value::as_str).unwrap_or("text") == "text" => {
                        out.push_str(t)
                    }
                    _ => {
                        return Err(ferr(
                            format!("{field}[{i}]"),
                            "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(other) => Err(ferr(
            field,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

pub(crate) fn turns(row: &Map<String, Value>, key: &str) -> Result<Vec<Message>, FieldError> {
    let mut buf = None;
    let list = as_list(&row[key], key, &mut buf)?;
    if list.is_empty() {
        return Err(ferr(key, "the list of turns is empty"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let Value::Object(m) = t else {
            return Err(ferr(
                format!("{key}[{i}]"),
                format!(
                    "expected an object with role and content, found {}",
                    type_name(t)
                ),
            ));
        };
        let (role_key, content_key) = if m.contains_key("role") || !m.contains_key("from") {
            ("role", "content")
        } else {
            ("from", "value")
        };
        let content_key = if m.contains_key(content_key) {
            content_key
        } else if m.contains_key("content") {
            "content"
        } else if m.contains_key("value") {
            "value"
        } else {
            content_key
        };
        let role = match m.get(role_key) {
            Some(Value::String(r)) => normalize_role(r).ok_or_else(|| {
                ferr(
                    format!("{key}[{i}].{role_key}"),
                    format!(
                        "unknown role {r:?} (expected user/human, assistant/gpt, system or tool)"
                    ),
                )
            })?,
            Some(other) => {
                return Err(ferr(
                    format!("{key}[{i}].{role_key}"),
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
            None => return Err(ferr(format!("{key}[{i}].{role_key}"), "missing")),
        };
        let content = content_of(m.get(content_key), &format!("{key}[{i}].{content_key}"))?;
        out.push(Message::new(role, content));
    }
    Ok(out)
}

pub(crate) fn required_string(row: &Map<String, Value>, key: &str) -> Result<String, FieldError> {
    match row.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Null) | None => Err(ferr(key, "missing")),
        Some(other) => Err(ferr(
            key,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

pub(crate) fn optional_string(
    row: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, FieldError> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_string(row, key).map(Some),
    }
}

fn alpaca(row: &Map<String, Value>) -> Result<Vec<Message>, FieldError> {
    let instruction = optional_string(row, "instruction")?.unwrap_or_default();
    let input = optional_string(row, "input")?.unwrap_or_default();
    let output = required_string(row, "output")?;
    let user = match (instruction.is_empty(), input.is_empty()) {
        (false, false) => format!("{instruction}\n{input}"),
        (false, true) => instruction,
        (true, false) => input,
        (true, true) => {
            return Err(ferr(
                "instruction",
                "the instruction and the input are both empty",
            ))
        }
    };
    Ok(vec![Message::user(user), Message::assistant(output)])
}

fn first_present<'a>(row: &Map<String, Value>, keys: &[&'a str]) -> &'a str {
    keys.iter()
        .find(|k| row.get(**k).is_some_and(|v| !v.is_null()))
        .copied()
        .unwrap_or(keys[0])
}

pub(crate) fn query_response(row: &Map<String, Value>) -> Result<Vec<Message>, FieldError> {
    let qk = first_present(row, &["query", "prompt", "question"]);
    let rk = first_present(row, &["response", "completion", "answer"]);
    let query = required_string(row, qk)?;
    let response = required_string(row, rk)?;
    let mut out = Vec::new();
    if let Some(h) = row
        .get("history")
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
    {
        let mut buf = None;
        let list = as_list(h, "history", &mut buf)?;
        for (i, pair) in list.iter().enumerate() {
            let field = format!("history[{i}]");
            let (q, r) = match pair {
                Value::Array(p) if p.len() == 2 => (&p[0], &p[1]),
                Value::Object(m) => match (m.get("query"), m.get("response")) {
                    (Some(q), Some(r)) => (q, r),
                    _ => return Err(ferr(field, "expected a [query, response] pair")),
                },
                other => {
                    return Err(ferr(
                        field,
                        format!(
                            "expected a [query, response] pair, found {}",
                            type_name(other)
                        ),
                    ))
                }
            };
            let q = q
                .as_str()
                .ok_or_else(|| ferr(format!("history[{i}][0]"), "expected a string"))?;
            let r = r
                .as_str()
                .ok_or_else(|| ferr(format!("history[{i}][1]"), "expected a string"))?;
            out.push(Message::user(q));
            out.push(Message::assistant(r));
        }
    }
    out.push(Message::user(query));
    out.push(Message::assistant(response));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Value) -> Result<Conversation, FieldError> {
        to_conversation(v.as_object().unwrap(), None)
    }

    fn pairs(c: &Conversation) -> Vec<(&str, &str)> {
        c.messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect()
    }

    #[test]
    fn messages_layout() {
        let c = conv(json!({"messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": [{"type": "text", "text": "A"}]}
        ]}))
        .unwrap();
        assert_eq!(c.layout, Layout::Messages);
        assert_eq!(
            pairs(&c),
            [("system", "S"), ("user", "Q"), ("assistant", "A")]
        );
        let e = conv(json!({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": 3}]}))
            .unwrap_err();
        assert_eq!(e.field, "messages[1].content");
        assert!(e.message.contains("a number"));
        let e = conv(json!({"messages": [{"role": "user", "content": "Q"}]})).unwrap_err();
        assert!(e.message.contains("no assistant turn"));
        let e = conv(json!({"messages": [{"role": "robot", "content": "Q"}]})).unwrap_err();
        assert_eq!(e.field, "messages[0].role");
    }

    #[test]
    fn sharegpt_layout_with_system_column() {
        let c = conv(json!({"system": "S", "conversations": [
            {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"},
            {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}
        ]}))
        .unwrap();
        assert_eq!(c.layout, Layout::ShareGpt);
        assert_eq!(
            pairs(&c),
            [
                ("system", "S"),
                ("user", "Q1"),
                ("assistant", "A1"),
                ("user", "Q2"),
                ("assistant", "A2")
            ]
        );
        let e = conv(json!({"conversations": [{"from": "human"}]})).unwrap_err();
        assert_eq!(e.field, "conversations[0].value");
    }

    #[test]
    fn alpaca_layout() {
        let c =
            conv(json!({"instruction": "Translate", "input": "chat", "output": "cat"})).unwrap();
        assert_eq!(c.layout, Layout::Alpaca);
        assert_eq!(
            pairs(&c),
            [("user", "Translate\nchat"), ("assistant", "cat")]
        );
        let c = to_conversation(
            json!({"instruction": "Hi", "input": "", "output": "Hello"})
                .as_object()
                .unwrap(),
            Some("Be brief."),
        )
        .unwrap();
        assert_eq!(
            pairs(&c),
            [
                ("system", "Be brief."),
                ("user", "Hi"),
                ("assistant", "Hello")
            ]
        );
        let e = conv(json!({"instruction": "Hi", "input": ""})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("output", "missing")
        );
    }

    #[test]
    fn query_response_layout_with_history() {
        let c = conv(
            json!({"query": "Q2", "response": "A2", "history": [["Q1", "A1"]], "system": "S"}),
        )
        .unwrap();
        assert_eq!(c.layout, Layout::QueryResponse);
        assert_eq!(
            pairs(&c),
            [
                ("system", "S"),
                ("user", "Q1"),
                ("assistant", "A1"),
                ("user", "Q2"),
                ("assistant", "A2")
            ]
        );
        // History as JSON text (a CSV cell).
        let c = conv(json!({"query": "Q2", "response": "A2", "history": "[[\"Q1\", \"A1\"]]"}))
            .unwrap();
        assert_eq!(c.messages.len(), 4);
        let e = conv(json!({"query": "Q", "response": "A", "history": [["Q1"]]})).unwrap_err();
        assert_eq!(e.field, "history[0]");
        let c = conv(json!({"prompt": "P", "completion": "C"})).unwrap();
        assert_eq!(pairs(&c), [("user", "P"), ("assistant", "C")]);
    }

    #[test]
    fn columns_mapping_renames_first() {
        let cols: BTreeMap<String, String> = [
            ("q".to_string(), "query".to_string()),
            ("a".to_string(), "response".to_string()),
        ]
        .into();
        let row = json!({"q": "Q", "a": "A", "query": "ignored"});
        let r = rename_columns(row.as_object().unwrap(), &cols);
        let c = to_conversation(&r, None).unwrap();
        assert_eq!(pairs(&c), [("user", "Q"), ("assistant", "A")]);
        let e = conv(json!({"q": "Q", "a": "A"})).unwrap_err();
        assert!(
            e.message.contains("--columns") && e.message.contains("q, a"),
            "{e}"
        );
    }

    #[test]
    fn empty_answers_are_flagged() {
        let c = conv(json!({"query": "Q", "response": "  "})).unwrap();
        assert!(c.has_empty_answer());
    }
}
