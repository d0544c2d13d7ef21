//! Preference data (issue 07) on the fixtures in fixtures/data, rendered with
//! the SmolLM2 tokenizer.

mod common;

use common::{root, smollm2_tokenizer};

use swift::data::{load_preferences, DatasetSpec, PreferenceData, SftOptions};
use swift::progress::NoProgress;
use swift::tokenizer::Tokenizer;

fn load(tok: &Tokenizer, name: &str, o: &SftOptions) -> anyhow::Result<PreferenceData> {
    let spec = DatasetSpec {
        path: root().join("fixtures/data").join(name),
        sample: None,
    };
    load_preferences(&[spec], &[], tok, o, &NoProgress)
}

fn opts() -> SftOptions {
    SftOptions {
        max_length: 1024,
        ..Default::default()
    }
}

#[test]
fn every_preference_layout_and_format_gives_triples() {
    let tok = smollm2_tokenizer();
    // (file, layout, [(chosen, rejected)])
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (
            "pref_prompt.jsonl",
            "prompt-chosen-rejected",
            &[
                ("No, it is round.", "Yes."),
                ("Thank you very much!", "thx"),
            ],
        ),
        ("pref_trl.json", "chosen-rejected", &[("4", "5")]),
        (
            "pref_messages.csv",
            "messages-rejected",
            &[("Tokyo.", "Kyoto.")],
        ),
        (
            "pref.parquet",
            "prompt-chosen-rejected",
            &[("A cat.", "A rock.")],
        ),
    ];
    for (name, layout, want) in cases {
        let d = load(&tok, name, &opts()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(d.report.sources[0].layout, *layout, "{name}");
        assert_eq!(d.train.len(), want.len(), "{name}");
        for (s, (c, r)) in d.train.iter().zip(want.iter()) {
            let prompt = tok.decode(&s.prompt, false).unwrap();
            assert!(
                prompt.ends_with("<|im_start|>assistant\n"),
                "{name}: {prompt}"
            );
            assert_eq!(
                tok.decode(&s.chosen, false).unwrap(),
                format!("{c}<|im_end|>")
            );
            assert_eq!(
                tok.decode(&s.rejected, false).unwrap(),
                format!("{r}<|im_end|>")
            );
            assert_eq!(s.label, None);
            // prompt + chosen is exactly how the template renders the
            // conversation (minus the trailing newline).
            let joined = s.chosen_sample();
            assert_eq!(joined.trained_tokens(), s.chosen.len());
        }
    }
    let d = load(&tok, "pref_prompt.jsonl", &opts()).unwrap();
    let prompt = tok.decode(&d.train[1].prompt, false).unwrap();
    assert!(
        prompt.starts_with("<|im_start|>system\nBe polite.<|im_end|>"),
        "{prompt}"
    );
}

#[test]
fn kto_rows_carry_their_label() {
    let tok = smollm2_tokenizer();
    let d = load(&tok, "kto.jsonl", &opts()).unwrap();
    assert_eq!(d.report.sources[0].layout, "kto");
    assert_eq!(d.train.len(), 2);
    assert_eq!(d.train[0].label, Some(true));
    assert_eq!(
        tok.decode(&d.train[0].chosen, false).unwrap(),
        "Hello, nice to meet you!<|im_end|>"
    );
    assert!(d.train[0].rejected.is_empty());
    assert_eq!(d.train[1].label, Some(false));
    assert_eq!(
        tok.decode(&d.train[1].rejected, false).unwrap(),
        "Go away.<|im_end|>"
    );
    assert_eq!(d.train[0].prompt, d.train[1].prompt);
}

#[test]
fn a_bad_preference_row_names_file_line_and_field() {
    let tok = smollm2_tokenizer();
    let e = load(&tok, "pref_bad.jsonl", &opts()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("pref_bad.jsonl line 2"), "{msg}");
    assert!(msg.contains("no known preference layout"), "{msg}");
    let d = load(
        &tok,
        "pref_bad.jsonl",
        &SftOptions {
            skip_bad_rows: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(d.report.sources[0].malformed, 1);
    assert_eq!(d.train.len(), 1);
    // SFT data is not preference data: a clear error naming the layouts.
    let e = load(&tok, "messages.jsonl", &opts()).unwrap_err();
    assert!(format!("{e:#}").contains("messages.jsonl line 1"), "{e:#}");
}
