//! `swift dpo` on SmolLM2: a short DPO run on fixtures/dpo/pairs.jsonl (the
//! chosen answers end with "Have a wonderful day, friend!", the rejected
//! ones do not) starts at ln 2, separates chosen from rejected, and the
//! adapter makes the chosen style more likely than the base does.

mod common;

use std::path::{Path, PathBuf};

use common::{
    root, smollm2, swift_cmd, tiny_chat_data, tiny_model, tiny_pairs, train_args, training_log,
};

use swift::model::{LoadOptions, Model};
use swift::tokenizer::Tokenizer;

fn fixture() -> PathBuf {
    root().join("fixtures/dpo/pairs.jsonl")
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
    let model = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = swift_cmd()
        .args(train_args("dpo", &model, &fixture(), &out))
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
    let recs: Vec<serde_json::Value> = training_log(&out)
        .into_iter()
        .filter(|r| r.get("loss").is_some())
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
    for f in [
        "train_loss.png",
        "train_rewards_chosen_rejected.png",
        "train_rewards_margins.png",
        "train_rewards_accuracies.png",
    ] {
        assert!(out.join("images").join(f).exists(), "images/{f} missing");
    }

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
    let model = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kto.jsonl");
    std::fs::write(
        &data,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}],\"label\":true}\n",
    )
    .unwrap();
    let o = swift_cmd()
        .args(train_args("dpo", &model, &data, &dir.path().join("o")))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--loss kto"));
    let o = swift_cmd()
        .args(["dpo", "--beta", "-1", "--model"])
        .arg(&model)
        .arg("--dataset")
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

// ---- Tiny random models: every loss, --adapter / --ref-adapter, full
// tuning, resume. A few steps each.

/// KTO's layout: `messages` ending with the completion and a boolean `label`.
fn tiny_kto(dir: &Path) -> PathBuf {
    let p = dir.join("kto.jsonl");
    let rows: String = (0..16)
        .map(|i| {
            let (answer, label) = if i % 2 == 0 {
                ("an answer at the inn", true)
            } else {
                ("the water is wet", false)
            };
            format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"the sea {i}\"}}, {{\"role\": \"assistant\", \"content\": \"{answer}\"}}], \"label\": {label}}}\n"
            )
        })
        .collect();
    std::fs::write(&p, rows).unwrap();
    p
}

/// Flags of every tiny run unless the test passes its own.
const DEFAULTS: [(&str, &str); 8] = [
    ("--batch-size", "4"),
    ("--gradient-accumulation-steps", "1"),
    ("--learning-rate", "1e-2"),
    ("--lr-scheduler-type", "constant"),
    ("--warmup-steps", "0"),
    ("--logging-steps", "1"),
    ("--lora-dropout", "0"),
    ("--threads", "2"),
];

fn dpo(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let o = swift_cmd()
        .args(train_args("dpo", model, data, out))
        .args(
            DEFAULTS
                .iter()
                .filter(|(k, _)| !extra.contains(k))
                .flat_map(|(k, v)| [*k, *v]),
        )
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "swift dpo {extra:?}: exit {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    training_log(out)
        .into_iter()
        .filter(|r| r.get("loss").is_some())
        .collect()
}

fn get(r: &serde_json::Value, k: &str) -> f64 {
    r.get(k)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{k} missing in {r}"))
}

const METRICS: [&str; 7] = [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
];

#[test]
fn every_loss_runs_logs_the_preference_metrics_and_lowers_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), "llama");
    let pairs = tiny_pairs(dir.path());
    let kto = tiny_kto(dir.path());
    // (flag, loss, data, step-0 loss when policy = reference, if fixed)
    let cases: [(&str, &str, &Path, Option<f64>); 6] = [
        ("--loss", "dpo", &pairs, Some(std::f64::consts::LN_2)),
        ("--rlhf-type", "ipo", &pairs, Some(25.0)), // (0 - 1/(2 * 0.1))^2
        ("--loss", "orpo", &pairs, None),
        ("--rlhf_type", "simpo", &pairs, None),
        ("--loss", "kto", &kto, Some(0.5)), // 1 - sigmoid(0)
        ("--loss-type", "kto", &pairs, Some(0.5)), // pairs split into both labels
    ];
    for (i, (flag, loss, data, step0)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("out-{i}-{loss}"));
        // KTO: 8 items a batch, so that every step has both labels (the
        // chosen / rejected metrics are logged when their side is present).
        let batch = if loss == "kto" { "8" } else { "4" };
        let recs = dpo(
            &model,
            data,
            &out,
            &[flag, loss, "--max-steps", "6", "--batch-size", batch],
        );
        assert_eq!(recs.len(), 6, "{loss}: {recs:?}");
        for r in &recs {
            for k in METRICS {
                assert!(get(r, k).is_finite(), "{loss}: {k} in {r}");
            }
        }
        let first = &recs[0];
        if let Some(want) = step0 {
            assert!(
                (get(first, "loss") - want).abs() < 1e-4,
                "{loss}: step-1 loss {} (want {want})",
                get(first, "loss")
            );
            for k in ["rewards/chosen", "rewards/rejected", "rewards/margins"] {
                assert!(get(first, k).abs() < 1e-4, "{loss}: {k} in {first}");
            }
        }
        let last = recs.last().unwrap();
        assert!(
            get(last, "loss") < get(first, "loss"),
            "{loss}: loss did not fall: {:?}",
            recs.iter().map(|r| get(r, "loss")).collect::<Vec<_>>()
        );
        assert!(
            get(last, "rewards/margins") > get(first, "rewards/margins"),
            "{loss}: margin did not grow: {first} -> {last}"
        );
        let args: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("args.json")).unwrap()).unwrap();
        assert_eq!(args["rlhf"]["loss"], loss, "{loss}");
        assert!(out.join("adapter_model.safetensors").exists(), "{loss}");
        if loss == "kto" {
            assert!(get(last, "kl") >= 0.0, "{last}");
        }
    }
}

#[test]
fn adapter_starts_the_policy_and_ref_adapter_sets_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), "llama");
    let pairs = tiny_pairs(dir.path());
    // An SFT adapter on the chosen answers.
    let sft_data = tiny_chat_data(dir.path(), 8);
    let sft = dir.path().join("sft");
    let o = swift_cmd()
        .args(train_args("finetune", &model, &sft_data, &sft))
        .args([
            "--method",
            "lora",
            "--batch-size",
            "4",
            "--max-steps",
            "4",
            "--learning-rate",
            "1e-2",
            "--lora-rank",
            "4",
            "--lora-alpha",
            "8",
            "--target-modules",
            "q_proj,v_proj,down_proj",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sft_s = sft.to_str().unwrap();

    let plain = dpo(
        &model,
        &pairs,
        &dir.path().join("plain"),
        &["--max-steps", "1"],
    );
    // Policy = reference = base + adapter: ln 2 and zero rewards at step 0.
    let both = dpo(
        &model,
        &pairs,
        &dir.path().join("both"),
        &[
            "--max-steps",
            "2",
            "--adapter",
            sft_s,
            "--ref-adapter",
            sft_s,
        ],
    );
    let b0 = &both[0];
    assert!(
        (get(b0, "loss") - std::f64::consts::LN_2).abs() < 1e-4,
        "{b0}"
    );
    assert!(get(b0, "rewards/chosen").abs() < 1e-4, "{b0}");
    assert!(get(b0, "rewards/rejected").abs() < 1e-4, "{b0}");
    // ... and the policy did start from the adapter: the SFT made the chosen
    // answer more likely than the plain base finds it.
    let p0 = &plain[0];
    assert!(
        get(b0, "logps/chosen") > get(p0, "logps/chosen") + 0.5,
        "logps/chosen with the adapter {} vs the base {}",
        get(b0, "logps/chosen"),
        get(p0, "logps/chosen")
    );
    // The adapter kept the SFT run's rank and targets.
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("both/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["r"], 4, "{cfg}");

    // Without --ref-adapter the reference is the base alone: the policy
    // already prefers the chosen answer at step 0.
    let only = dpo(
        &model,
        &pairs,
        &dir.path().join("only"),
        &["--max-steps", "1", "--adapter", sft_s],
    );
    let o0 = &only[0];
    assert!(
        (get(o0, "loss") - std::f64::consts::LN_2).abs() > 1e-3,
        "{o0}"
    );
    assert!(get(o0, "rewards/chosen").abs() > 1e-3, "{o0}");
    assert!(
        (get(o0, "logps/chosen") - get(b0, "logps/chosen")).abs() < 1e-4,
        "same policy at step 0: {o0} vs {b0}"
    );
}

#[test]
fn full_tuning_with_a_frozen_copy_matches_precomputed_reference_logps() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), "llama");
    let pairs = tiny_pairs(dir.path());
    let common = [
        "--method",
        "full",
        "--max-steps",
        "3",
        "--learning-rate",
        "1e-3",
    ];
    let frozen = dpo(&model, &pairs, &dir.path().join("frozen"), &common);
    let mut pre_args = common.to_vec();
    pre_args.push("--precompute-ref-logps");
    let pre = dpo(&model, &pairs, &dir.path().join("pre"), &pre_args);
    assert_eq!(frozen.len(), 3);
    assert_eq!(pre.len(), 3);
    assert!(
        (get(&frozen[0], "loss") - std::f64::consts::LN_2).abs() < 1e-4,
        "{}",
        frozen[0]
    );
    for (a, b) in frozen.iter().zip(&pre) {
        for k in ["loss", "rewards/chosen", "rewards/rejected", "logps/chosen"] {
            assert!(
                (get(a, k) - get(b, k)).abs() < 1e-4,
                "{k}: frozen copy {a} vs precomputed {b}"
            );
        }
    }
    assert!(
        get(&frozen[2], "loss") < get(&frozen[0], "loss"),
        "{frozen:?}"
    );
    // Full tuning writes the model, not an adapter.
    let out = dir.path().join("frozen");
    assert!(out.join("config.json").exists());
    assert!(out.join("model.safetensors").exists());
    assert!(!out.join("adapter_model.safetensors").exists());
    let args: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("args.json")).unwrap()).unwrap();
    assert_eq!(args["tuner"], "full");
}

#[test]
fn resume_from_a_checkpoint_repeats_the_uninterrupted_steps() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), "llama");
    let pairs = tiny_pairs(dir.path());
    let a = dir.path().join("a");
    let whole = dpo(
        &model,
        &pairs,
        &a,
        &["--max-steps", "4", "--save-steps", "2"],
    );
    assert!(a.join("checkpoint-2").exists());
    let ck = a.join("checkpoint-2");
    let resumed = dpo(
        &model,
        &pairs,
        &dir.path().join("b"),
        &[
            "--max-steps",
            "4",
            "--save-steps",
            "2",
            "--resume-from-checkpoint",
            ck.to_str().unwrap(),
        ],
    );
    let tail: Vec<_> = resumed
        .iter()
        .filter(|r| r["step"].as_u64().unwrap() > 2)
        .collect();
    assert_eq!(tail.len(), 2, "{resumed:?}");
    for (x, y) in whole[2..].iter().zip(tail) {
        assert_eq!(x["step"], y["step"]);
        for k in METRICS {
            assert!(
                (get(x, k) - get(y, k)).abs() < 1e-4,
                "{k}: uninterrupted {x} vs resumed {y}"
            );
        }
    }
}
