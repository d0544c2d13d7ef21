//! `swift infer` on the tiny random HF folders of every supported
//! architecture (written by `model::testing`): loading a folder, the chat
//! template path, the context window, generation_config.json.

mod common;

use std::path::Path;
use std::process::Output;

use common::{ok_json, swift_cmd};
use swift::model::testing::{write_tiny_model, TINY_ARCHS};

/// `swift ARGS` in `dir`.
fn swift(dir: &Path, args: &[&str]) -> Output {
    swift_cmd().args(args).current_dir(dir).output().unwrap()
}

#[test]
fn infer_tiny_every_architecture() {
    for arch in TINY_ARCHS {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join(arch);
        write_tiny_model(&m, arch, 1).unwrap();
        let m = m.to_str().unwrap();
        // Through the chat template (ChatML in the tiny tokenizer).
        let o = swift(
            d.path(),
            &[
                "infer",
                "--model",
                m,
                "--prompt",
                "the weather",
                "--temperature",
                "0",
                "--max-new-tokens",
                "6",
                "--ignore-eos",
                "--json",
            ],
        );
        let v = ok_json(&o);
        assert_eq!(v["completion_tokens"], 6, "{arch}: {v}");
        assert_eq!(v["finish_reason"], "length", "{arch}");
        // Raw: fewer prompt tokens than with the template.
        let o = swift(
            d.path(),
            &[
                "infer",
                "--model",
                m,
                "--raw",
                "--prompt",
                "the weather",
                "--temperature",
                "0",
                "--max-new-tokens",
                "6",
                "--ignore-eos",
                "--json",
            ],
        );
        let raw = ok_json(&o);
        assert!(
            raw["prompt_tokens"].as_u64() < v["prompt_tokens"].as_u64(),
            "{arch}: {raw} vs {v}"
        );
        // Greedy is deterministic.
        let o = swift(
            d.path(),
            &[
                "infer",
                "--model",
                m,
                "--raw",
                "--prompt",
                "the weather",
                "--temperature",
                "0",
                "--max-new-tokens",
                "6",
                "--ignore-eos",
                "--json",
            ],
        );
        assert_eq!(ok_json(&o)["text"], raw["text"], "{arch}");
    }
}

#[test]
fn infer_tiny_stops_when_the_context_is_full() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("m");
    let cfg = write_tiny_model(&m, "llama", 2).unwrap();
    let ctx = cfg.max_position_embeddings;
    // A raw prompt of single characters that are not merged: one token each.
    let prompt = "x".repeat(ctx - 4);
    let o = swift(
        d.path(),
        &[
            "infer",
            "--model",
            m.to_str().unwrap(),
            "--raw",
            "--prompt",
            &prompt,
            "--temperature",
            "0",
            "--ignore-eos",
            "--json",
        ],
    );
    let v = ok_json(&o);
    let p = v["prompt_tokens"].as_u64().unwrap() as usize;
    assert!(p < ctx, "{v}");
    assert_eq!(
        v["completion_tokens"].as_u64().unwrap() as usize,
        ctx - p,
        "{v}"
    );
    assert_eq!(v["finish_reason"], "length");
    // A prompt of the whole window leaves no room: an error.
    let prompt = "x".repeat(ctx);
    let o = swift(
        d.path(),
        &[
            "infer",
            "--model",
            m.to_str().unwrap(),
            "--raw",
            "--prompt",
            &prompt,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("context window is {ctx} tokens")),
        "{err}"
    );
}

#[test]
fn infer_tiny_sampling_defaults_from_generation_config() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("m");
    write_tiny_model(&m, "qwen2", 3).unwrap();
    let ms = m.to_str().unwrap();
    let args = [
        "infer",
        "--model",
        ms,
        "--raw",
        "--prompt",
        "the",
        "--max-new-tokens",
        "16",
        "--ignore-eos",
        "--json",
        "-v",
    ];
    // do_sample false: greedy, twice the same.
    let o = swift(d.path(), &args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("sampling: greedy (the model's generation_config.json sets do_sample false)"),
        "{err}"
    );
    let a = ok_json(&o);
    assert_eq!(a["text"], ok_json(&swift(d.path(), &args))["text"]);
    // do_sample true: the config's temperature is used (seen with -v).
    std::fs::write(
        m.join("generation_config.json"),
        r#"{"do_sample": true, "temperature": 0.9, "top_p": 0.8, "eos_token_id": 2}"#,
    )
    .unwrap();
    let o = swift(d.path(), &args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains(
            "sampling: temperature 0.9, top-k 50, top-p 0.8 \
             (from the model's generation_config.json)"
        ),
        "{err}"
    );
    let mut seeded = args.to_vec();
    seeded.extend(["--seed", "11"]);
    let s1 = ok_json(&swift(d.path(), &seeded));
    assert_eq!(s1["text"], ok_json(&swift(d.path(), &seeded))["text"]);
}
