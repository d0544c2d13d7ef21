//! Every command's `--help` and the shape of every `--json` answer,
//! snapshotted with insta (tests/snapshots): a changed flag, help line or
//! JSON field shows up as a diff to review, then accept with
//! `cargo insta review` or `INSTA_UPDATE=always`. Values that change from
//! run to run (paths under the temporary folder, timings, memory, losses and
//! rates of a training step) are redacted: the snapshot keeps the keys, their
//! nesting and the values that must not move. The commands that have to run
//! do so on tiny random models for one step, so this file stays fast.

mod common;
mod hub_server;

use std::path::Path;

use common::{
    ok, ok_json, redact, s, stderr, stdout, swift, swift_cmd, tiny_chat_data, tiny_model,
    tiny_pairs, train_args,
};
use serde_json::Value;

/// Every command in the clap tree as its words after `swift` (the root is
/// the empty list), nested subcommands included; clap's own `help` left out.
fn command_paths(c: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    for sub in c.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        command_paths(sub, p, out);
    }
}

#[test]
fn help_of_every_command() {
    let mut paths = Vec::new();
    command_paths(&swift::cli::command(), Vec::new(), &mut paths);
    let names: Vec<String> = paths.iter().map(|p| p.join(" ")).collect();
    for want in ["", "download", "estimate-vram", "finetune", "dpo", "eval"] {
        assert!(names.iter().any(|n| n == want), "{want:?} not in {names:?}");
    }
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = swift(&args);
        ok(&o);
        assert_eq!(stderr(&o), "", "swift {args:?}");
        let name = std::iter::once("help_swift")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("_");
        insta::assert_snapshot!(name, stdout(&o));
    }
    // No arguments off a terminal: the help on stderr, the usage exit code.
    let o = swift(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage: swift"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

/// `v` made stable (see [`redact`]) and snapshotted as JSON.
fn assert_shape(name: &str, mut v: Value, dir: &Path, volatile: &[&str]) {
    redact(&mut v, dir, volatile);
    insta::assert_json_snapshot!(name, v);
}

#[test]
fn estimate_vram_devices_json() {
    // The plan's own object is snapshotted by cli_estimate_vram.rs
    // (full_llama2_json); without a model the command lists the devices.
    let v = ok_json(&swift(&["estimate-vram", "--json"]));
    assert_eq!(v["cpu"]["kind"], "cpu");
    assert!(v["cpu"]["total_bytes"].as_u64().unwrap() > 0, "{v}");
    assert_shape(
        "estimate_vram_devices_json",
        v,
        Path::new("/nonexistent"),
        &["name", "total_bytes", "free_bytes"],
    );
}

#[test]
fn download_json() {
    // The dataset registry: built in, so stable to the letter (a user
    // registry under HOME is kept out).
    let home = tempfile::tempdir().unwrap();
    let o = swift_cmd()
        .args(["download", "--list-datasets", "--json"])
        .env("HOME", home.path())
        .env_remove("SWIFT_DATASET_REGISTRY")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    insta::assert_json_snapshot!("download_list_datasets_json", ok_json(&o));

    // A model from a hub on loopback.
    let hub = hub_server::HubServer::start();
    hub_server::tiny_model(&hub, "org/tiny");
    let mut c = hub_server::swift_cmd(common::SWIFT, home.path(), &hub);
    c.args(["download", "org/tiny", "--json"]);
    let v = ok_json(&c.output().unwrap());
    assert_eq!(v["hub"], "hf");
    assert_eq!(v["files"].as_array().unwrap().len(), 4, "{v}");
    assert_shape("download_model_json", v, home.path(), &[]);
}

#[test]
fn infer_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let v = ok_json(&swift(&[
        "infer",
        "--model",
        s(&model),
        "--prompt",
        "the weather",
        "--temperature",
        "0",
        "--max-new-tokens",
        "4",
        "--ignore-eos",
        "--json",
    ]));
    assert_eq!(v["completion_tokens"], 4, "{v}");
    // The text of a random model is checked elsewhere (serve_api.rs): here
    // it would only tie the snapshot to the last bit of the kernels.
    assert_shape(
        "infer_json",
        v,
        tmp.path(),
        &[
            "text",
            "prefill_seconds",
            "decode_seconds",
            "prefill_tokens_per_s",
            "decode_tokens_per_s",
        ],
    );
}

#[test]
fn eval_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = common::root().join("fixtures/eval");
    let mut args = vec!["eval", "--model", s(&model)];
    let tasks = [
        ("perplexity", data.join("corpus.jsonl")),
        ("mc", data.join("arc.jsonl")),
        ("exact-match", data.join("gsm8k.jsonl")),
    ];
    for (task, file) in &tasks {
        args.extend(["--task", task, "--dataset", s(file)]);
    }
    args.extend(["--limit", "2", "--max-new-tokens", "4", "--json"]);
    let v = ok_json(&swift(&args));
    assert_eq!(v["results"].as_array().unwrap().len(), 3, "{v}");
    assert_shape(
        "eval_json",
        v,
        tmp.path(),
        &["value", "stderr", "seconds", "items_per_second"],
    );
}

/// A training run's volatile values: its event file's name (host, time),
/// timings, and the losses and rates of one step on a random model.
const TRAINING: &[&str] = &[
    "event_file",
    "train_seconds",
    "tokens_per_second",
    "train_loss",
    "eval_loss",
    "rewards/accuracies",
    "rewards/margins",
];

fn one_step(command: &str, model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = train_args(command, model, data, out);
    args.extend([
        "--batch-size",
        "2",
        "--max-steps",
        "1",
        "--threads",
        "2",
        "--json",
    ]);
    args.extend_from_slice(extra);
    ok_json(&swift(&args))
}

#[test]
fn finetune_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = tiny_chat_data(tmp.path(), 8);
    let v = one_step("finetune", &model, &data, &tmp.path().join("run"), &[]);
    assert_eq!(v["steps"], 1, "{v}");
    assert!(v["train_loss"].as_f64().unwrap() > 0.0, "{v}");
    assert_shape("finetune_json", v, tmp.path(), TRAINING);

    // With --merge the job ends in a merged model and says where.
    let v = one_step(
        "finetune",
        &model,
        &data,
        &tmp.path().join("job"),
        &["--merge"],
    );
    assert!(Path::new(v["merged"].as_str().unwrap()).is_dir(), "{v}");
    assert_shape("finetune_merge_json", v, tmp.path(), TRAINING);
}

#[test]
fn dpo_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = tiny_pairs(tmp.path());
    let v = one_step("dpo", &model, &data, &tmp.path().join("run"), &[]);
    assert_eq!(v["steps"], 1, "{v}");
    assert_shape("dpo_json", v, tmp.path(), TRAINING);
}

#[test]
fn merge_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    let cfg = swift::model::testing::write_tiny_model(&model, "llama", 9).unwrap();
    let adapter = tmp.path().join("adapter");
    swift::model::testing::write_random_adapter(&adapter, &cfg, 4, 8.0, false, "tiny", 5).unwrap();
    let v = ok_json(&swift(&[
        "merge",
        "--model",
        s(&model),
        "--adapter",
        s(&adapter),
        "--output",
        s(&tmp.path().join("merged")),
        "--json",
    ]));
    assert!(v["merged_tensors"].as_u64().unwrap() > 0, "{v}");
    assert_shape("merge_json", v, tmp.path(), &["peak_rss_bytes"]);
}
