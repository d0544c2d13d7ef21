//! The decoder against PyTorch + transformers on SmolLM2-135M-Instruct
//! (`/work/shared/reference/smollm2/reference.json`, copied numbers):
//! per-token log-probs within 1e-3, the same top-10 last-position tokens,
//! the same greedy continuation; with and without the reference PEFT adapter.

mod common;

use common::{ids, reference_dir, smollm2};
use serde_json::Value;
use std::sync::OnceLock;
use swift::model::{KvCache, LoadOptions, Model};

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(common::reference)
}

fn base_model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::load(&smollm2(), &LoadOptions::default()).unwrap())
}

fn adapter_model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let opts = LoadOptions {
            adapters: vec![reference_dir().join("adapter")],
        };
        Model::load(&smollm2(), &opts).unwrap()
    })
}

/// Checks one case, returns the max log-prob error.
fn check(model: &Model, case: &Value, want: &Value) -> f32 {
    let name = case["name"].as_str().unwrap();
    let ids = ids(&case["input_ids"]);
    let lp = model.token_logprobs(&ids).unwrap();
    let wlp: Vec<f32> = want["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(lp.len(), wlp.len(), "{name}");
    let mut max_err = 0f32;
    for (i, (a, b)) in lp.iter().zip(&wlp).enumerate() {
        let e = (a - b).abs();
        max_err = max_err.max(e);
        assert!(e < 1e-3, "{name}: token {i}: log-prob {a} vs PyTorch {b}");
    }
    // Top-10 of the last position.
    let mut cache = KvCache::new(model, 1);
    let logits = model.forward_ids(&ids, 1, &mut cache, true).unwrap();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap());
    let top: Vec<Value> = want["last_logits_top10"].as_array().unwrap().clone();
    for (rank, pair) in top.iter().enumerate() {
        let (tok, val) = (
            pair[0].as_u64().unwrap() as usize,
            pair[1].as_f64().unwrap() as f32,
        );
        assert!(
            (logits[tok] - val).abs() < 2e-3,
            "{name}: logit of {tok}: {} vs {val}",
            logits[tok]
        );
        // Ties within rounding may swap neighbours; the set must match.
        let got: Vec<usize> = order[..10].to_vec();
        assert!(
            got.contains(&tok),
            "{name}: top-10 {got:?} lacks {tok} (rank {rank})"
        );
    }
    for (i, v) in want["last_logits_first16"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let v = v.as_f64().unwrap() as f32;
        assert!(
            (logits[i] - v).abs() < 2e-3,
            "{name}: logit {i}: {} vs {v}",
            logits[i]
        );
    }
    max_err
}

#[test]
fn base_logprobs_and_top10_match_pytorch() {
    let mut worst = 0f32;
    for case in reference()["cases"].as_array().unwrap() {
        worst = worst.max(check(base_model(), case, &case["base"]));
    }
    eprintln!("max |log-prob error| (base): {worst:.2e}");
}

#[test]
fn adapter_logprobs_and_top10_match_pytorch() {
    let mut worst = 0f32;
    for case in reference()["cases"].as_array().unwrap() {
        worst = worst.max(check(adapter_model(), case, &case["with_adapter"]));
    }
    eprintln!("max |log-prob error| (adapter): {worst:.2e}");
}

#[test]
fn greedy_continuations_match_pytorch() {
    let model = base_model();
    let mut n = 0;
    for case in reference()["cases"].as_array().unwrap() {
        let Some(want) = case.get("greedy_ids").and_then(Value::as_array) else {
            continue;
        };
        let want: Vec<u32> = want.iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let mut cache = KvCache::new(model, 1);
        let mut logits = model
            .forward_ids(&ids(&case["input_ids"]), 1, &mut cache, true)
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let next = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.partial_cmp(b.1).unwrap())
                .unwrap()
                .0 as u32;
            got.push(next);
            logits = model.forward_ids(&[next], 1, &mut cache, true).unwrap();
        }
        assert_eq!(got, want, "{}", case["name"]);
        n += 1;
    }
    assert!(n >= 1);
}

#[test]
fn gguf_written_as_hf_folder_gives_the_same_numbers() {
    let model = base_model();
    let dir = tempfile::tempdir().unwrap();
    swift::model::export::write_hf(model, dir.path(), &Default::default()).unwrap();
    assert!(dir.path().join("config.json").exists());
    let hf = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert!(hf.config().tie_word_embeddings);
    for case in reference()["cases"].as_array().unwrap() {
        let ids = ids(&case["input_ids"]);
        let a = model.token_logprobs(&ids).unwrap();
        let b = hf.token_logprobs(&ids).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4, "{}: {x} vs {y}", case["name"]);
        }
        check(&hf, case, &case["base"]);
    }
    // And with the adapter applied on the HF folder.
    let opts = LoadOptions {
        adapters: vec![reference_dir().join("adapter")],
    };
    let hfa = Model::load(dir.path(), &opts).unwrap();
    let case = &reference()["cases"][0];
    check(&hfa, case, &case["with_adapter"]);
}
