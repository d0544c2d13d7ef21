//! `swift dpo` on SmolLM2: a short DPO run on fixtures/dpo/pairs.jsonl (the
//! chosen answers end with "Have a wonderful day, friend!", the rejected
//! ones do not) starts at ln 2, separates chosen from rejected, and the
//! adapter makes the chosen style more likely than the base does.

use std::path::{Path, PathBuf};
use std::process::Command;

use swift::model::{LoadOptions, Model};
use swift::tokenizer::Tokenizer;

fn smollm() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run fixtures/fetch-smollm2.sh first",
        p.display()
    );
    p
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dpo/pairs.jsonl")
}

/// Summed log-prob of `answer` after the chat prompt `question`.
fn answer_logp(model: &Model, tok: &Tokenizer, question: &str, answer: &str) -> f64 {
    let prompt = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    let p = tok.encode(&prompt, false).unwrap();
    let mut ids = p.clone();
    ids.extend(tok.encode(&format!("{answer}<|im_end|>"), false).unwrap());
    let lp = model.token_logprobs(&ids).unwrap();
    lp[p.len() - 1..].iter().map(|&x| x as f64).sum()
}

#[test]
fn dpo_run_raises_accuracy_and_margin_and_the_adapter_prefers_the_chosen_style() {
    let model = smollm();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_swift"))
        .args(["dpo", "--model"])
        .arg(&model)
        .arg("--dataset")
        .arg(fixture())
        .arg("--output-dir")
        .arg(&out)
        .args([
            "--rlhf-type",
            "dpo",
            "--beta",
            "0.1",
            "--batch-size",
            "2",
            "--gradient-accumulation-steps",
            "1",
            "--max-steps",
            "6",
            "--learning-rate",
            "1e-3",
            "--logging-steps",
            "1",
            "--warmup-steps",
            "1",
            "--threads",
            "2",
            "--lora-dropout",
            "0",
            "--max-length",
            "96",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(out.join("logging.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("loss").is_some())
        .collect();
    let first = &recs[0];
    assert!(
        (first["loss"].as_f64().unwrap() - std::f64::consts::LN_2).abs() < 1e-4,
        "{first}"
    );
    assert!(
        first["rewards/chosen"].as_f64().unwrap().abs() < 1e-4,
        "{first}"
    );
    assert!(
        first["rewards/rejected"].as_f64().unwrap().abs() < 1e-4,
        "{first}"
    );
    let last = recs.last().unwrap();
    for k in [
        "rewards/chosen",
        "rewards/rejected",
        "logps/chosen",
        "logps/rejected",
    ] {
        assert!(last.get(k).is_some(), "{k} missing in {last}");
    }
    assert!(last["rewards/accuracies"].as_f64().unwrap() > 0.9, "{last}");
    assert!(last["rewards/margins"].as_f64().unwrap() > 0.0, "{last}");
    assert!(out.join("adapter_model.safetensors").exists());

    // The adapter prefers the chosen style on a question it was not trained on.
    let tok = Tokenizer::load(&model).unwrap();
    let base = Model::load(&model, &LoadOptions::default()).unwrap();
    let mut tuned = base.clone();
    swift::model::adapter::apply(&mut tuned, &out).unwrap();
    let q = "What is the largest mammal?";
    let plain = "The blue whale is the largest mammal.";
    let styled = "The blue whale is the largest mammal. Have a wonderful day, friend!";
    let gap = |m: &Model| answer_logp(m, &tok, q, styled) - answer_logp(m, &tok, q, plain);
    let (g0, g1) = (gap(&base), gap(&tuned));
    assert!(
        g1 > g0 + 1.0,
        "styled-minus-plain log-prob: base {g0:.3}, adapter {g1:.3}"
    );
}

#[test]
fn dpo_rejects_kto_rows_without_kto_and_bad_flags() {
    let model = smollm();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kto.jsonl");
    std::fs::write(
        &data,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}],\"label\":true}\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_swift"))
        .args(["dpo", "--model"])
        .arg(&model)
        .arg("--dataset")
        .arg(&data)
        .arg("--output-dir")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--loss kto"));
    let o = Command::new(env!("CARGO_BIN_EXE_swift"))
        .args(["dpo", "--beta", "-1", "--model"])
        .arg(&model)
        .arg("--dataset")
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
