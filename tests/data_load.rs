//! Dataset loading on the fixtures in fixtures/data (every format and layout,
//! a bad row per format) and label masking on the SmolLM2 tokenizer.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{root, smollm2_tokenizer};

use swift::data::{load_sft, DatasetSpec, Sample, SftData, SftOptions, Truncation, IGNORE};
use swift::progress::NoProgress;
use swift::tokenizer::Tokenizer;

fn fixture(name: &str) -> DatasetSpec {
    DatasetSpec {
        path: root().join("fixtures/data").join(name),
        sample: None,
    }
}

fn opts() -> SftOptions {
    SftOptions {
        max_length: 1024,
        ..Default::default()
    }
}

fn load(tok: &Tokenizer, names: &[&str], o: &SftOptions) -> anyhow::Result<SftData> {
    let specs: Vec<DatasetSpec> = names.iter().map(|n| fixture(n)).collect();
    load_sft(&specs, &[], tok, o, &NoProgress)
}

/// The trained stretches of a sample, decoded (special tokens kept).
fn trained_runs(tok: &Tokenizer, s: &Sample) -> Vec<String> {
    let mut runs = Vec::new();
    let mut cur: Vec<u32> = Vec::new();
    for (&id, &l) in s.input_ids.iter().zip(&s.labels) {
        if l == IGNORE {
            if !cur.is_empty() {
                runs.push(tok.decode(&cur, false).unwrap());
                cur.clear();
            }
        } else {
            assert_eq!(l, id as i64, "a label differs from its input id");
            cur.push(id);
        }
    }
    if !cur.is_empty() {
        runs.push(tok.decode(&cur, false).unwrap());
    }
    runs
}

fn with_end(answers: &[&str]) -> Vec<String> {
    answers.iter().map(|a| format!("{a}<|im_end|>")).collect()
}

#[test]
fn smollm2_masks_everything_but_assistant_turns_and_im_end() {
    let tok = smollm2_tokenizer();
    let d = load(&tok, &["messages.jsonl"], &opts()).unwrap();
    assert_eq!(d.train.len(), 3);
    assert_eq!(trained_runs(&tok, &d.train[0]), with_end(&["Paris."]));
    assert_eq!(
        trained_runs(&tok, &d.train[1]),
        with_end(&["Red.", "Blue."])
    );
    assert_eq!(trained_runs(&tok, &d.train[2]), with_end(&["Hi!"]));
    // The whole row is the template's rendering, SmolLM2's default system
    // prompt included where the row has none.
    let text = tok.decode(&d.train[2].input_ids, false).unwrap();
    assert!(text.starts_with("<|im_start|>system\n"), "{text}");
    assert!(
        text.ends_with("<|im_start|>assistant\nHi!<|im_end|>\n"),
        "{text}"
    );
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    for s in &d.train {
        assert_eq!(s.input_ids.len(), s.labels.len());
        // The final newline after <|im_end|> is not trained.
        assert_eq!(*s.labels.last().unwrap(), IGNORE);
        assert_eq!(s.labels[s.labels.len() - 2], im_end as i64);
    }
    assert_eq!(d.report.template, "model");

    let all = load(
        &tok,
        &["messages.jsonl"],
        &SftOptions {
            loss_on_all_tokens: true,
            ..opts()
        },
    )
    .unwrap();
    for (a, m) in all.train.iter().zip(&d.train) {
        assert_eq!(a.input_ids, m.input_ids);
        assert!(a.labels.iter().all(|&l| l != IGNORE));
    }
}

#[test]
fn every_layout_and_format_loads() {
    let tok = smollm2_tokenizer();
    let cases: &[(&str, &str, &str, &[&[&str]])] = &[
        ("sharegpt.json", "json", "sharegpt", &[&["Yes."], &["4", "6"]]),
        (
            "alpaca.csv",
            "csv",
            "alpaca",
            &[
                &["chat"],
                &["Waves fold into foam,\nsalt wind carries gull voices,\nthe tide keeps its time."],
                &["cold"],
            ],
        ),
        ("query_response.jsonl", "jsonl", "query-response", &[&["Italy.", "Rome."], &["5"]]),
        (
            "messages.parquet",
            "parquet",
            "messages",
            &[&["Blue."], &["8"], &["Down.", "Right."]],
        ),
        ("alpaca.parquet", "parquet", "alpaca", &[&["5"], &["A dog."], &["cba"]]),
    ];
    for (name, format, layout, answers) in cases {
        let d = load(&tok, &[name], &opts()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let src = &d.report.sources[0];
        assert_eq!(
            (src.format.as_str(), src.layout.as_str()),
            (*format, *layout),
            "{name}"
        );
        assert_eq!(d.train.len(), answers.len(), "{name}");
        for (s, want) in d.train.iter().zip(answers.iter()) {
            assert_eq!(trained_runs(&tok, s), with_end(want), "{name}");
        }
    }
    // System prompts: the ShareGPT row's own, the query-response row's own.
    let d = load(&tok, &["sharegpt.json", "query_response.jsonl"], &opts()).unwrap();
    let text = tok.decode(&d.train[0].input_ids, false).unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nAnswer in one word.<|im_end|>"),
        "{text}"
    );
    let text = tok.decode(&d.train[2].input_ids, false).unwrap();
    assert!(
        text.contains("Which country is shaped like a boot?"),
        "{text}"
    );
    // Alpaca joins instruction and input with a newline.
    let d = load(&tok, &["alpaca.csv"], &opts()).unwrap();
    let text = tok.decode(&d.train[0].input_ids, false).unwrap();
    assert!(
        text.contains("<|im_start|>user\nTranslate to French\ncat<|im_end|>"),
        "{text}"
    );
}

#[test]
fn a_folder_of_mixed_formats_and_a_default_system_prompt() {
    let tok = smollm2_tokenizer();
    let dir = tempfile::tempdir().unwrap();
    for n in ["messages.parquet", "alpaca.csv", "sharegpt.json"] {
        std::fs::copy(root().join("fixtures/data").join(n), dir.path().join(n)).unwrap();
    }
    let spec = DatasetSpec {
        path: dir.path().to_path_buf(),
        sample: None,
    };
    let o = SftOptions {
        system: Some("Be kind.".into()),
        ..opts()
    };
    let d = load_sft(&[spec], &[], &tok, &o, &NoProgress).unwrap();
    assert_eq!(d.train.len(), 8);
    let src = &d.report.sources[0];
    assert_eq!(src.format, "csv+json+parquet");
    assert_eq!(src.layout, "alpaca+messages+sharegpt");
    let text = tok.decode(&d.train[0].input_ids, false).unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nBe kind.<|im_end|>"),
        "{text}"
    );
}

#[test]
fn columns_map_other_names() {
    let tok = smollm2_tokenizer();
    let err = load(&tok, &["custom_columns.jsonl"], &opts()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("custom_columns.jsonl line 1") && msg.contains("--columns"),
        "{msg}"
    );
    let columns: BTreeMap<String, String> = [
        ("question".to_string(), "query".to_string()),
        ("answer_text".to_string(), "response".to_string()),
    ]
    .into();
    let d = load(
        &tok,
        &["custom_columns.jsonl"],
        &SftOptions { columns, ..opts() },
    )
    .unwrap();
    assert_eq!(trained_runs(&tok, &d.train[0]), with_end(&["Jupiter."]));
}

fn assert_bad_row(name: &str, place: &str, field: &str, good_rows: usize) {
    let tok = smollm2_tokenizer();
    let err = load(&tok, &[name], &opts()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("{name} {place}")), "{name}: {msg}");
    assert!(msg.contains(&format!("field `{field}`")), "{name}: {msg}");
    assert!(msg.contains("--skip-bad-rows"), "{name}: {msg}");
    let d = load(
        &tok,
        &[name],
        &SftOptions {
            skip_bad_rows: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(d.report.sources[0].malformed, 1, "{name}");
    assert_eq!(d.train.len(), good_rows, "{name}");
}

#[test]
fn bad_row_jsonl_names_file_line_and_field() {
    assert_bad_row("bad.jsonl", "line 3", "messages[1].content", 3);
}

#[test]
fn bad_row_json_names_file_element_and_field() {
    assert_bad_row("bad.json", "[1]", "output", 2);
}

#[test]
fn bad_row_csv_names_file_record_line_and_field() {
    // The first record spans lines 2-3, so the bad one is on line 4.
    assert_bad_row("bad.csv", "line 4", "history[0]", 2);
}

#[test]
fn bad_row_parquet_names_file_row_and_field() {
    assert_bad_row("bad.parquet", "row [2]", "messages[1].content", 3);
}

#[test]
fn truncation_left_keeps_the_answer() {
    let tok = smollm2_tokenizer();
    let o = SftOptions {
        max_length: 12,
        truncation: Truncation::Left,
        ..opts()
    };
    let d = load(&tok, &["messages.jsonl"], &o).unwrap();
    assert_eq!(d.train.len(), 3);
    assert_eq!(d.report.sources[0].truncated, 3);
    for s in &d.train {
        assert_eq!(s.input_ids.len(), 12);
        assert!(trained_runs(&tok, s)
            .last()
            .unwrap()
            .ends_with("<|im_end|>"));
    }
    let d = load(
        &tok,
        &["messages.jsonl"],
        &SftOptions {
            max_length: 12,
            ..opts()
        },
    );
    let e = d.unwrap_err().to_string();
    assert!(
        e.contains("empty after filtering") && e.contains("3 over --max-length"),
        "{e}"
    );
}

#[test]
fn report_renders_a_table() {
    let tok = smollm2_tokenizer();
    let d = load(&tok, &["messages.jsonl", "alpaca.csv"], &opts()).unwrap();
    let text = d.report.render();
    assert!(
        text.contains("messages.jsonl") && text.contains("alpaca.csv"),
        "{text}"
    );
    assert!(text.contains("rows: 6 train, 0 validation"), "{text}");
    assert!(text.contains("max length 1024"), "{text}");
    let json = serde_json::to_value(&d.report).unwrap();
    assert_eq!(json["sources"][1]["layout"], "alpaca");
}

#[test]
fn hub_ids_that_are_not_local_go_to_the_hub() {
    let tok = smollm2_tokenizer();
    let spec: DatasetSpec = "no-such-org/no-such-dataset#5".parse().unwrap();
    // Offline with an empty cache: the lookup fails with a message naming it.
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::set_var("HF_HOME", cache.path());
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::set_var("MODELSCOPE_CACHE", cache.path());
    let e = load_sft(&[spec], &[], &tok, &opts(), &NoProgress).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("no-such-org/no-such-dataset"), "{msg}");
    assert!(!Path::new("no-such-org").exists());
}
