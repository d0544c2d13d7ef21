//! Unit tests of the loading pipeline on the tiny byte-level tokenizer.

use super::testing::tiny_tokenizer;
use super::*;
use crate::progress::NoProgress;
use crate::tokenizer::Message;

fn trained_text(tok: &Tokenizer, s: &Sample) -> String {
    let ids: Vec<u32> = s
        .labels
        .iter()
        .filter(|&&l| l != IGNORE)
        .map(|&l| l as u32)
        .collect();
    tok.decode(&ids, false).unwrap()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> DatasetSpec {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    DatasetSpec {
        path: p,
        sample: None,
    }
}

fn opts() -> SftOptions {
    SftOptions {
        max_length: 0,
        ..Default::default()
    }
}

#[test]
fn specs_parse_path_and_count() {
    let s: DatasetSpec = "data/train.jsonl#100".parse().unwrap();
    assert_eq!(s.path, PathBuf::from("data/train.jsonl"));
    assert_eq!(s.sample, Some(100));
    assert_eq!(s.to_string(), "data/train.jsonl#100");
    let s: DatasetSpec = "org/name".parse().unwrap();
    assert_eq!(s.sample, None);
    let s: DatasetSpec = "odd#name.jsonl".parse().unwrap();
    assert_eq!(s.path, PathBuf::from("odd#name.jsonl"));
    assert!("a.jsonl#0".parse::<DatasetSpec>().is_err());
    assert!("#5".parse::<DatasetSpec>().is_err());
    assert_eq!("LEFT".parse::<Truncation>().unwrap(), Truncation::Left);
    assert!("middle".parse::<Truncation>().is_err());
}

#[test]
fn only_assistant_turns_and_their_end_token_are_trained() {
    let tok = tiny_tokenizer();
    let markers = render::end_markers(&tok);
    let msgs = [
        Message::system("S"),
        Message::user("Q1"),
        Message::assistant("A1"),
        Message::user("Q2"),
        Message::assistant("A two"),
    ];
    let s = render::encode_conversation(&tok, &msgs, false, &markers).unwrap();
    assert_eq!(s.input_ids.len(), s.labels.len());
    assert_eq!(
        trained_text(&tok, &s),
        "A1<|im_end|>A two<|im_end|>",
        "{:?}",
        s
    );
    // The newline after <|im_end|> and every prompt token are masked; the
    // trained labels equal the input ids where set.
    for (l, &i) in s.labels.iter().zip(&s.input_ids) {
        assert!(*l == IGNORE || *l == i as i64);
    }
    let all = render::encode_conversation(&tok, &msgs, true, &markers).unwrap();
    assert_eq!(all.trained_tokens(), all.input_ids.len());
    assert_eq!(all.input_ids, s.input_ids);
}

#[test]
fn truncation_strategies() {
    let s = Sample {
        input_ids: (0..10).collect(),
        labels: [vec![IGNORE; 6], (6..10).collect()].concat(),
    };
    assert_eq!(
        fit(s.clone(), 10, Truncation::Delete),
        (Some(s.clone()), false)
    );
    assert_eq!(fit(s.clone(), 8, Truncation::Delete), (None, false));
    let (l, cut) = fit(s.clone(), 8, Truncation::Left);
    assert!(cut);
    assert_eq!(l.unwrap().input_ids, (2..10).collect::<Vec<u32>>());
    let (r, _) = fit(s.clone(), 7, Truncation::Right);
    let r = r.unwrap();
    assert_eq!(r.input_ids, (0..7).collect::<Vec<u32>>());
    assert_eq!(r.trained_tokens(), 1);
    // Cutting away every trained token drops the row.
    assert_eq!(fit(s.clone(), 5, Truncation::Right), (None, false));
    assert_eq!(fit(s, 0, Truncation::Delete).0.unwrap().input_ids.len(), 10);
}

#[test]
fn packing_fills_rows_and_masks_seams() {
    let mk = |n: u32| Sample {
        input_ids: (0..n).map(|i| i + 10).collect(),
        labels: (0..n).map(|i| (i + 10) as i64).collect(),
    };
    let packed = pack(vec![mk(4), mk(3), mk(5), mk(2), mk(9)], 9);
    let lens: Vec<usize> = packed.iter().map(|s| s.input_ids.len()).collect();
    assert_eq!(lens, [7, 7, 9]);
    assert_eq!(packed[0].labels[4], IGNORE);
    assert_eq!(packed[0].labels[0], 10);
    assert_eq!(packed[0].labels[5], 11);
    assert_eq!(packed[2].trained_tokens(), 9);
}

#[test]
fn sampling_is_deterministic_and_repeats_past_the_row_count() {
    let a = sample_indices(10, 4, 7);
    assert_eq!(a, sample_indices(10, 4, 7));
    assert_eq!(a.len(), 4);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
    assert_ne!(a, sample_indices(10, 4, 8));
    let b = sample_indices(3, 7, 1);
    assert_eq!(b.len(), 7);
    assert_eq!(&b[..6], &[0, 1, 2, 0, 1, 2]);
    assert!(sample_indices(0, 5, 1).is_empty());
}

#[test]
fn load_counts_duplicates_empty_answers_and_splits() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "{{\"query\": \"q{i}\", \"response\": \"r{i}\"}}\n"
        ));
    }
    text.push_str("{\"query\": \"q0\", \"response\": \"r0\"}\n");
    text.push_str("{\"query\": \"q1\", \"response\": \"r1\"}\n");
    text.push_str("{\"query\": \"q\", \"response\": \" \"}\n");
    let spec = write(dir.path(), "d.jsonl", &text);
    let tok = tiny_tokenizer();
    let d = load_sft(std::slice::from_ref(&spec), &[], &tok, &opts(), &NoProgress).unwrap();
    assert_eq!(d.report.duplicates, 2);
    assert!(!d.report.duplicates_removed);
    assert_eq!(d.train.len(), 22);
    let s = &d.report.sources[0];
    assert_eq!(
        (s.rows, s.kept, s.empty_answer, s.duplicates),
        (23, 22, 1, 2)
    );
    assert_eq!(s.layout, "query-response");
    assert_eq!(s.format, "jsonl");

    let o = SftOptions {
        dedup: true,
        split_ratio: 0.1,
        ..opts()
    };
    let d = load_sft(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
    assert!(d.report.duplicates_removed);
    assert_eq!((d.train.len(), d.val.len()), (18, 2));
    assert_eq!((d.report.train_rows, d.report.val_rows), (18, 2));
    let again = load_sft(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
    assert_eq!(d.val, again.val, "the split is deterministic");
    let other = load_sft(
        &[spec],
        &[],
        &tok,
        &SftOptions { seed: 3, ..o },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(other.val.len(), 2);
}

#[test]
fn lengths_max_length_and_packing_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 1..=10 {
        text.push_str(&format!(
            "{{\"instruction\": \"i\", \"output\": \"{}\"}}\n",
            "x".repeat(i * 5)
        ));
    }
    let spec = write(dir.path(), "a.jsonl", &text);
    let tok = tiny_tokenizer();
    let d = load_sft(std::slice::from_ref(&spec), &[], &tok, &opts(), &NoProgress).unwrap();
    let base = d.report.length_min; // the 5-character answer
    assert_eq!(d.report.length_max, base + 45);
    assert_eq!(d.report.length_median, base + 20);
    let o = SftOptions {
        max_length: base + 20,
        ..opts()
    };
    let d = load_sft(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
    assert_eq!(d.train.len(), 5);
    assert_eq!(d.report.sources[0].over_length, 5);
    let o = SftOptions {
        max_length: base + 20,
        truncation: Truncation::Right,
        ..opts()
    };
    let d = load_sft(std::slice::from_ref(&spec), &[], &tok, &o, &NoProgress).unwrap();
    assert_eq!(d.train.len(), 10);
    assert_eq!(d.report.sources[0].truncated, 5);
    assert!(d.train.iter().all(|s| s.input_ids.len() <= base + 20));
    let o = SftOptions {
        max_length: 3 * base,
        packing: true,
        ..opts()
    };
    let d = load_sft(&[spec], &[], &tok, &o, &NoProgress).unwrap();
    assert!(d.report.packing);
    assert_eq!(d.report.train_rows, 10);
    assert!(d.train.len() < 10);
    assert_eq!(d.report.train_sequences, d.train.len());
    assert!(d.train.iter().all(|s| s.input_ids.len() <= 3 * base));
    let total: usize = d.train.iter().map(|s| s.input_ids.len()).sum();
    assert_eq!(total, (0..10).map(|i| base + 5 * i).sum::<usize>());
}

#[test]
fn bad_rows_fail_or_are_counted_and_empty_data_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "b.jsonl",
        "{\"query\": \"q\", \"response\": \"r\"}\n{\"query\": \"q\", \"response\": [5]}\nnot json\n",
    );
    let tok = tiny_tokenizer();
    let e = load_sft(std::slice::from_ref(&spec), &[], &tok, &opts(), &NoProgress).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("b.jsonl line 3") && msg.contains("not valid JSON"),
        "{msg}"
    );
    let o = SftOptions {
        skip_bad_rows: true,
        ..opts()
    };
    let d = load_sft(&[spec], &[], &tok, &o, &NoProgress).unwrap();
    assert_eq!(d.report.sources[0].malformed, 2);
    assert_eq!(d.train.len(), 1);

    let spec = write(
        dir.path(),
        "e.jsonl",
        "{\"query\": \"q\", \"response\": \"\"}\n",
    );
    let e = load_sft(&[spec], &[], &tok, &opts(), &NoProgress).unwrap_err();
    assert!(
        e.to_string().contains("empty after filtering") && e.to_string().contains("empty answer"),
        "{e}"
    );
}

#[test]
fn sampling_and_mixing_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &(0..10)
            .map(|i| format!("{{\"query\": \"a{i}\", \"response\": \"x\"}}\n"))
            .collect::<String>(),
    );
    let b = write(
        dir.path(),
        "b.json",
        "[{\"instruction\": \"b\", \"output\": \"y\"}, {\"instruction\": \"c\", \"output\": \"z\"}]",
    );
    let tok = tiny_tokenizer();
    let a3 = DatasetSpec {
        sample: Some(3),
        ..a
    };
    let b5 = DatasetSpec {
        sample: Some(5),
        ..b
    };
    let d = load_sft(&[a3.clone(), b5.clone()], &[], &tok, &opts(), &NoProgress).unwrap();
    assert_eq!(d.train.len(), 8);
    assert_eq!(d.report.sources.len(), 2);
    assert_eq!(d.report.sources[1].kept, 5);
    assert_eq!(d.report.sources[1].rows, 2);
    let again = load_sft(&[a3, b5], &[], &tok, &opts(), &NoProgress).unwrap();
    assert_eq!(d.train, again.train);
}

#[test]
fn folders_read_every_file_and_prefer_the_train_split() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ds");
    std::fs::create_dir_all(sub.join("data")).unwrap();
    std::fs::write(
        sub.join("data/train.jsonl"),
        "{\"query\": \"q\", \"response\": \"r\"}\n",
    )
    .unwrap();
    std::fs::write(sub.join("data/test.csv"), "query,response\nq2,r2\nq3,r3\n").unwrap();
    std::fs::write(sub.join("README.md"), "# nothing").unwrap();
    let tok = tiny_tokenizer();
    let spec = DatasetSpec {
        path: sub.clone(),
        sample: None,
    };
    let both = std::slice::from_ref(&spec);
    let d = load_sft(both, both, &tok, &opts(), &NoProgress).unwrap();
    assert_eq!((d.train.len(), d.val.len()), (1, 2));
    assert_eq!(d.report.sources[1].split, "val");
    assert_eq!(d.report.sources[1].format, "csv");
}

/// The trained stretches of a sample, decoded.
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
            cur.push(id);
        }
    }
    if !cur.is_empty() {
        runs.push(tok.decode(&cur, false).unwrap());
    }
    runs
}

#[test]
fn every_builtin_template_trains_answers_through_their_end_marker() {
    let msgs = [
        Message::system("S"),
        Message::user("Q1"),
        Message::assistant("A1"),
        Message::user("Q2"),
        Message::assistant("A2"),
    ];
    // The tiny tokenizer's eos token is <|im_end|>.
    let cases: &[(&str, [&str; 2])] = &[
        ("chatml", ["A1<|im_end|>", "A2<|im_end|>"]),
        ("llama2", [" A1 <|im_end|>", " A2 <|im_end|>"]),
        ("llama3", ["A1<|eot_id|>", "A2<|eot_id|>"]),
        // Mistral puts the system prompt into the last message when it is a
        // user turn, so no prefix renders as the whole conversation does:
        // the answers are found by their content.
        ("mistral", ["A1<|im_end|>", "A2<|im_end|>"]),
        ("qwen", ["A1<|im_end|>", "A2<|im_end|>"]),
        // Qwen3 writes an (empty) thinking block into the answer after the
        // last user turn: the model is to generate it, so it is trained.
        (
            "qwen3",
            ["A1<|im_end|>", "<think>\n\n</think>\n\nA2<|im_end|>"],
        ),
        ("gemma", ["A1<end_of_turn>", "A2<end_of_turn>"]),
        ("phi3", ["A1<|end|>", "A2<|end|>"]),
        ("alpaca", ["A1<|im_end|>", "A2<|im_end|>"]),
        // No end marker at all: the turn as written.
        ("plain", ["\n\nA1", "\n\nA2"]),
    ];
    for (name, want) in cases {
        let mut tok = tiny_tokenizer();
        tok.use_builtin_template(name).unwrap();
        let markers = render::end_markers(&tok);
        let s = render::encode_conversation(&tok, &msgs, false, &markers)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        // Whitespace is compared loosely: the gemma template writes
        // indentation around the content.
        let squash = |t: &str| t.split_whitespace().collect::<String>();
        let got: Vec<String> = trained_runs(&tok, &s).iter().map(|t| squash(t)).collect();
        let want: Vec<String> = want.iter().map(|t| squash(t)).collect();
        assert_eq!(got, want, "{name}");
        // Preference triples split at the same place.
        let (p, a) = render::encode_prompt_completion(&tok, &msgs[..4], "A2", &markers).unwrap();
        assert_eq!(squash(&tok.decode(&a, false).unwrap()), want[1], "{name}");
        assert_eq!(&s.input_ids[..p.len()], &p[..], "{name}");
    }
}
