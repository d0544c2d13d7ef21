//! Task data: rows of a dataset file (read by [`crate::data::formats`]) turned
//! into documents of one of three kinds, and the prompts lm-evaluation-harness
//! would build from them.
//!
//! Multiple-choice layouts (detected per row by its fields):
//!
//! | layout    | fields                                               | prompt (`doc_to_text`)                       | choices          |
//! |-----------|------------------------------------------------------|----------------------------------------------|------------------|
//! | MMLU      | `question`, `choices` (list), `answer` (index/letter), `subject`? | `Q\nA. c0\nB. c1\n...\nAnswer:`     | ` A`, ` B`, ...  |
//! | C-Eval    | `question`, `A`, `B`, `C`, `D`, `answer` (letter), `subject`?     | same, `答案：` when the question is Chinese | ` A`, ` B`, ... |
//! | ARC       | `question`, `choices: {text, label}`, `answerKey`    | `Question: Q\nAnswer:`                       | ` <text>`        |
//! | HellaSwag | `ctx` or `ctx_a`+`ctx_b`, `activity_label`?, `endings`, `label` | `<activity>: <ctx>` (lm-eval's preprocessing) | ` <ending>` |
//!
//! Exact match (GSM8K): `question`, `answer` (ending in `#### N`); the prompt
//! is `Question: Q\nAnswer:` and a few-shot example's target is the whole
//! answer. Perplexity: a `text` field per row, or a `.txt` file read whole.
//!
//! Few-shot prompts: `description + (shot_text + " " + shot_target + "\n\n")*
//! + doc_text`, lm-evaluation-harness's `target_delimiter` and
//! `fewshot_delimiter`.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use crate::data::formats::{self, Row};

/// What a task measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Perplexity,
    MultipleChoice,
    ExactMatch,
}

impl TaskKind {
    pub const NAMES: &'static str = "perplexity, multiple-choice or exact-match";

    /// A task name as typed (`perplexity`/`ppl`, `multiple-choice`/`mc`,
    /// `exact-match`/`generate`/`gsm8k`; `_` for `-` too).
    pub fn parse(s: &str) -> Option<TaskKind> {
        Some(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "perplexity" | "ppl" => TaskKind::Perplexity,
            "multiple-choice" | "mc" | "choice" => TaskKind::MultipleChoice,
            "exact-match" | "em" | "generate" | "generation" | "gsm8k" => TaskKind::ExactMatch,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Perplexity => "perplexity",
            TaskKind::MultipleChoice => "multiple-choice",
            TaskKind::ExactMatch => "exact-match",
        }
    }
}

/// Between a prompt and its answer (lm-eval's `target_delimiter`).
pub const TARGET_DELIMITER: &str = " ";
/// Between few-shot examples (lm-eval's `fewshot_delimiter`).
pub const FEWSHOT_DELIMITER: &str = "\n\n";

/// One multiple-choice document.
#[derive(Debug, Clone, PartialEq)]
pub struct McDoc {
    /// Where it came from (`file line N`).
    pub loc: String,
    /// An instruction placed once before everything (from `subject`).
    pub description: String,
    /// The question as the model sees it (`doc_to_text`).
    pub text: String,
    /// The choice texts (`doc_to_choice`), without the delimiter.
    pub choices: Vec<String>,
    pub gold: usize,
}

/// One generation document.
#[derive(Debug, Clone, PartialEq)]
pub struct GenDoc {
    pub loc: String,
    pub text: String,
    /// The full answer (a few-shot example's target).
    pub answer: String,
    /// The answer compared with the prediction (after `####`).
    pub target: String,
}

/// One perplexity document.
#[derive(Debug, Clone, PartialEq)]
pub struct TextDoc {
    pub loc: String,
    pub text: String,
}

/// A prompt with few-shot examples (question, answer) before the document.
pub fn build_prompt(description: &str, shots: &[(String, String)], text: &str) -> String {
    let mut s = description.to_string();
    for (q, a) in shots {
        s.push_str(q);
        s.push_str(TARGET_DELIMITER);
        s.push_str(a);
        s.push_str(FEWSHOT_DELIMITER);
    }
    s.push_str(text);
    s
}

/// Which pool entries serve as the few-shot examples of document `item`.
/// From a separate dev split the first `k` (as lm-eval's MMLU `first_n`);
/// from the evaluated file itself `k` others drawn with `seed + item` (the
/// document itself is never its own example). Fewer when the pool is small.
pub fn fewshot_indices(
    pool_len: usize,
    k: usize,
    item: usize,
    same_file: bool,
    seed: u64,
) -> Vec<usize> {
    if k == 0 || pool_len == 0 {
        return Vec::new();
    }
    if !same_file {
        return (0..k.min(pool_len)).collect();
    }
    let others = pool_len.saturating_sub(1);
    let k = k.min(others);
    if k == 0 {
        return Vec::new();
    }
    crate::data::sample_indices(others, k, seed.wrapping_add(item as u64))
        .into_iter()
        .map(|i| if i >= item { i + 1 } else { i })
        .collect()
}

fn loc_err(row: &Row, msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}: {msg}", row.loc)
}

fn get<'a>(row: &'a Row, key: &str) -> Option<&'a Value> {
    row.value.get(key).filter(|v| !v.is_null())
}

fn string_field(row: &Row, keys: &[&str]) -> Result<String> {
    for k in keys {
        if let Some(v) = get(row, k) {
            return match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(loc_err(
                    row,
                    format!(
                        "field `{k}` must be a string, found {}",
                        formats::type_name(other)
                    ),
                )),
            };
        }
    }
    Err(loc_err(
        row,
        format!("missing field `{}`", keys.join("` / `")),
    ))
}

/// A list of strings; CSV cells may hold it as JSON text.
fn string_list(row: &Row, key: &str) -> Result<Vec<String>> {
    let v = get(row, key).ok_or_else(|| loc_err(row, format!("missing field `{key}`")))?;
    let parsed;
    let v = match v {
        Value::String(s) if s.trim_start().starts_with('[') => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| loc_err(row, format!("field `{key}` is not a JSON list: {e}")))?;
            &parsed
        }
        v => v,
    };
    let Value::Array(items) = v else {
        return Err(loc_err(
            row,
            format!(
                "field `{key}` must be a list of strings, found {}",
                formats::type_name(v)
            ),
        ));
    };
    items
        .iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(loc_err(
                row,
                format!(
                    "field `{key}` must hold strings, found {}",
                    formats::type_name(other)
                ),
            )),
        })
        .collect()
}

/// The gold index from an index, a letter, a numeral or a choice label.
fn gold_index(row: &Row, key: &str, labels: &[String]) -> Result<usize> {
    let v = get(row, key).ok_or_else(|| loc_err(row, format!("missing field `{key}`")))?;
    let n = labels.len();
    let idx = match v {
        Value::Number(x) => x.as_u64().map(|i| i as usize),
        Value::String(s) => {
            let s = s.trim();
            if let Some(i) = labels.iter().position(|l| l == s) {
                Some(i)
            } else if let Ok(i) = s.parse::<usize>() {
                Some(i)
            } else if s.len() == 1 && s.as_bytes()[0].is_ascii_uppercase() {
                Some((s.as_bytes()[0] - b'A') as usize)
            } else {
                None
            }
        }
        _ => None,
    };
    match idx {
        Some(i) if i < n => Ok(i),
        _ => Err(loc_err(
            row,
            format!("field `{key}` = {v} does not name one of the {n} choices"),
        )),
    }
}

fn letters(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| ((b'A' + i as u8) as char).to_string())
        .collect()
}

fn has_cjk(s: &str) -> bool {
    s.chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c))
}

fn lettered(question: &str, options: &[String], chinese: bool) -> String {
    let mut s = question.trim().to_string();
    for (l, o) in letters(options.len()).iter().zip(options) {
        s.push_str(&format!("\n{l}. {o}"));
    }
    s.push_str(if chinese { "\n答案：" } else { "\nAnswer:" });
    s
}

fn subject_description(row: &Row, chinese: bool) -> String {
    match get(row, "subject").and_then(Value::as_str) {
        Some(subj) if !subj.trim().is_empty() => {
            let subj = subj.trim().replace('_', " ");
            if chinese {
                format!("以下是中国关于{subj}的单项选择题，请选出其中的正确答案。\n\n")
            } else {
                format!(
                    "The following are multiple choice questions (with answers) about {subj}.\n\n"
                )
            }
        }
        _ => String::new(),
    }
}

/// Python's `str.capitalize`: the first character upper-cased, the rest
/// lower-cased.
fn py_capitalize(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f
            .to_uppercase()
            .chain(cs.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// lm-evaluation-harness's HellaSwag `preprocess`.
pub fn hellaswag_preprocess(text: &str) -> String {
    let t = text.trim().replace(" [title]", ". ");
    // re.sub("\\[.*?\\]", "", text)
    let mut out = String::with_capacity(t.len());
    let mut rest = t.as_str();
    while let Some(i) = rest.find('[') {
        match rest[i..].find(']') {
            Some(j) => {
                out.push_str(&rest[..i]);
                rest = &rest[i + j + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

/// One row as a multiple-choice document (layout detected by its fields).
pub fn mc_doc(row: &Row) -> Result<McDoc> {
    let m: &Map<String, Value> = &row.value;
    let loc = row.loc.to_string();
    if m.contains_key("endings") {
        // HellaSwag.
        let ctx = if m.contains_key("ctx_a") {
            let a = string_field(row, &["ctx_a"])?;
            let b = string_field(row, &["ctx_b"]).unwrap_or_default();
            format!("{a} {}", py_capitalize(&b))
        } else {
            string_field(row, &["ctx", "context"])?
        };
        let text = match get(row, "activity_label").and_then(Value::as_str) {
            Some(a) => hellaswag_preprocess(&format!("{a}: {ctx}")),
            None => hellaswag_preprocess(&ctx),
        };
        let choices: Vec<String> = string_list(row, "endings")?
            .iter()
            .map(|e| hellaswag_preprocess(e))
            .collect();
        let gold = gold_index(row, "label", &letters(choices.len()))?;
        return Ok(McDoc {
            loc,
            description: String::new(),
            text,
            choices,
            gold,
        });
    }
    if let Some(Value::Object(ch)) = m.get("choices") {
        // ARC.
        let sub = Row {
            loc: row.loc.clone(),
            value: ch.clone(),
        };
        let texts = string_list(&sub, "text")?;
        let labels = match ch.get("label") {
            Some(_) => string_list(&sub, "label")?,
            None => letters(texts.len()),
        };
        if labels.len() != texts.len() {
            return Err(loc_err(
                row,
                "`choices.text` and `choices.label` differ in length",
            ));
        }
        let q = string_field(row, &["question"])?;
        let key = if m.contains_key("answerKey") {
            "answerKey"
        } else {
            "answer"
        };
        let gold = gold_index(row, key, &labels)?;
        return Ok(McDoc {
            loc,
            description: String::new(),
            text: format!("Question: {q}\nAnswer:"),
            choices: texts,
            gold,
        });
    }
    if m.contains_key("choices") || m.contains_key("options") {
        // MMLU.
        let key = if m.contains_key("choices") {
            "choices"
        } else {
            "options"
        };
        let options = string_list(row, key)?;
        if options.len() < 2 {
            return Err(loc_err(
                row,
                format!("field `{key}` needs at least 2 choices"),
            ));
        }
        if options.len() > 26 {
            return Err(loc_err(
                row,
                format!("field `{key}` has more than 26 choices"),
            ));
        }
        let q = string_field(row, &["question", "query"])?;
        let choices = letters(options.len());
        let gold = gold_index(row, "answer", &choices)?;
        let chinese = has_cjk(&q);
        return Ok(McDoc {
            loc,
            description: subject_description(row, chinese),
            text: lettered(&q, &options, chinese),
            choices,
            gold,
        });
    }
    if m.contains_key("A") && m.contains_key("B") {
        // C-Eval (and MMLU as CSV with A..D columns).
        let mut options = Vec::new();
        for l in letters(26) {
            match get(row, &l) {
                Some(_) => options.push(string_field(row, &[l.as_str()])?),
                None => break,
            }
        }
        let q = string_field(row, &["question"])?;
        let choices = letters(options.len());
        let gold = gold_index(row, "answer", &choices)?;
        let chinese = has_cjk(&q);
        return Ok(McDoc {
            loc,
            description: subject_description(row, chinese),
            text: lettered(&q, &options, chinese),
            choices,
            gold,
        });
    }
    Err(loc_err(
        row,
        "not a multiple-choice row: expected `question` + `choices` + `answer` (MMLU), \
         `question` + `A`..`D` + `answer` (C-Eval), `question` + `choices: {text, label}` + \
         `answerKey` (ARC), or `ctx` + `endings` + `label` (HellaSwag)",
    ))
}

/// One row as a generation document.
pub fn gen_doc(row: &Row) -> Result<GenDoc> {
    let q = string_field(row, &["question", "problem", "input"])?;
    let answer = string_field(row, &["answer", "target", "solution"])?;
    Ok(GenDoc {
        loc: row.loc.to_string(),
        text: format!("Question: {q}\nAnswer:"),
        target: super::metrics::target_of(&answer),
        answer,
    })
}

/// One row as a perplexity document.
pub fn text_doc(row: &Row) -> Result<TextDoc> {
    Ok(TextDoc {
        loc: row.loc.to_string(),
        text: string_field(row, &["text", "content", "document"])?,
    })
}

/// The rows of a dataset file; a row that cannot be read is an error naming
/// its place. A `.txt` file is one row with its whole text under `text`.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    if !path.exists() {
        bail!("dataset {} does not exist", path.display());
    }
    let is_txt = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    if is_txt {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut m = Map::new();
        m.insert("text".into(), Value::String(text));
        return Ok(vec![Row {
            loc: formats::Loc {
                file: path.to_path_buf(),
                pos: formats::Pos::Line(1),
            },
            value: m,
        }]);
    }
    let fr = formats::read_file(path)?;
    if let Some(bad) = fr.bad.first() {
        bail!("{bad}");
    }
    if fr.rows.is_empty() {
        bail!("{} holds no rows", path.display());
    }
    Ok(fr.rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::{Loc, Pos};
    use serde_json::json;

    fn row(v: Value) -> Row {
        Row {
            loc: Loc {
                file: "t.jsonl".into(),
                pos: Pos::Line(3),
            },
            value: v.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn mmlu_prompt_and_letter_choices() {
        let d = mc_doc(&row(
            json!({"question": " What is 2+2? ", "subject": "elementary_mathematics",
            "choices": ["3", "4", "5", "22"], "answer": 1}),
        ))
        .unwrap();
        assert_eq!(d.text, "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:");
        assert_eq!(d.choices, ["A", "B", "C", "D"]);
        assert_eq!(d.gold, 1);
        assert_eq!(
            d.description,
            "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
        );
        // A letter answer, and choices as JSON text (a CSV cell).
        let d = mc_doc(&row(
            json!({"question": "Q", "choices": "[\"a\", \"b\"]", "answer": "B"}),
        ))
        .unwrap();
        assert_eq!((d.gold, d.choices.len()), (1, 2));
    }

    #[test]
    fn ceval_arc_hellaswag_layouts() {
        let d = mc_doc(&row(
            json!({"question": "中国的首都是哪里？", "A": "上海", "B": "北京",
            "C": "广州", "D": "深圳", "answer": "B"}),
        ))
        .unwrap();
        assert_eq!(
            d.text,
            "中国的首都是哪里？\nA. 上海\nB. 北京\nC. 广州\nD. 深圳\n答案："
        );
        assert_eq!(d.gold, 1);
        let d = mc_doc(&row(json!({"question": "Which is a gas?",
            "choices": {"text": ["iron", "oxygen"], "label": ["1", "2"]}, "answerKey": "2"})))
        .unwrap();
        assert_eq!(d.text, "Question: Which is a gas?\nAnswer:");
        assert_eq!((d.choices[1].as_str(), d.gold), ("oxygen", 1));
        let d = mc_doc(&row(
            json!({"activity_label": "Baking", "ctx_a": "She mixes flour.",
            "ctx_b": "then she [title] ADDS eggs", "endings": ["bakes it. ", "[step] eats it"],
            "label": "0"}),
        ))
        .unwrap();
        assert_eq!(d.text, "Baking: She mixes flour. Then she. adds eggs");
        // Python strips before removing the bracket, so a space stays.
        assert_eq!(d.choices, ["bakes it.", " eats it"]);
        assert_eq!(d.gold, 0);
    }

    #[test]
    fn malformed_rows_name_their_place() {
        let e = mc_doc(&row(
            json!({"question": "Q", "choices": ["a", "b"], "answer": 5}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("t.jsonl line 3:"), "{e}");
        assert!(e.contains("answer"), "{e}");
        let e = mc_doc(&row(json!({"prompt": "x"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multiple-choice row"), "{e}");
        let e = gen_doc(&row(json!({"question": "x"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.jsonl line 3: missing field `answer`"), "{e}");
    }

    #[test]
    fn fewshot_prompt_construction() {
        // Hand-built: description, two shots with " " before each answer and
        // a blank line after, then the question.
        let shots = vec![
            ("Q: 1+1?\nAnswer:".to_string(), "B".to_string()),
            ("Q: 2+2?\nAnswer:".to_string(), "D".to_string()),
        ];
        let p = build_prompt("About sums.\n\n", &shots, "Q: 3+3?\nAnswer:");
        assert_eq!(
            p,
            "About sums.\n\nQ: 1+1?\nAnswer: B\n\nQ: 2+2?\nAnswer: D\n\nQ: 3+3?\nAnswer:"
        );
        assert_eq!(build_prompt("", &[], "Q"), "Q");
    }

    #[test]
    fn fewshot_selection_is_deterministic_and_skips_the_item() {
        // A dev split: the first k, whatever the item.
        assert_eq!(fewshot_indices(5, 3, 4, false, 1234), vec![0, 1, 2]);
        assert_eq!(fewshot_indices(2, 3, 0, false, 1234), vec![0, 1]);
        // The same file: k others, the same for the same seed.
        for item in 0..10 {
            let a = fewshot_indices(10, 3, item, true, 1234);
            assert_eq!(a.len(), 3);
            assert!(!a.contains(&item), "{item}: {a:?}");
            assert!(a.iter().all(|&i| i < 10));
            assert_eq!(a, fewshot_indices(10, 3, item, true, 1234));
        }
        assert_eq!(fewshot_indices(4, 9, 2, true, 7), vec![0, 1, 3]);
        assert_eq!(fewshot_indices(1, 2, 0, true, 7), Vec::<usize>::new());
        assert_eq!(fewshot_indices(5, 0, 0, true, 7), Vec::<usize>::new());
    }

    #[test]
    fn task_names() {
        assert_eq!(TaskKind::parse("ppl"), Some(TaskKind::Perplexity));
        assert_eq!(
            TaskKind::parse("multiple_choice"),
            Some(TaskKind::MultipleChoice)
        );
        assert_eq!(TaskKind::parse("gsm8k"), Some(TaskKind::ExactMatch));
        assert_eq!(TaskKind::parse("bleu"), None);
    }
}
