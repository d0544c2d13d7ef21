//! `swift finetune` through the binary: LoRA on the SmolLM2 GGUF learns the
//! fixture (loss, TensorBoard events, peft adapter, `swift infer --adapter`),
//! resumes exactly; Ctrl-C writes a checkpoint and exits 130; full tuning
//! writes an HF folder; LoRA on the f32 HF weights.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use common::{
    ok, root, s, smollm2, smollm2_tokenizer, swift, swift_cmd, tiny_chat_data, tiny_model,
    train_args, training_log, QUICK_LORA,
};

fn fixture() -> PathBuf {
    root().join("fixtures/train/bananas.jsonl")
}

fn losses(dir: &Path) -> Vec<(u64, f64)> {
    training_log(dir)
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r.get("loss")?.as_f64()?)))
        .collect()
}

const SYSTEM: &str = "Be brief.";

fn lora_args<'a>(model: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    let mut v = vec![
        "finetune",
        "--model",
        model,
        "--system",
        SYSTEM,
        "--output-dir",
        out,
        "--max-steps",
        steps,
    ];
    v.extend_from_slice(QUICK_LORA);
    v
}

fn answer(model: &Path, adapter: Option<&Path>) -> String {
    let mut args = vec![
        "infer",
        "--model",
        s(model),
        "--system",
        SYSTEM,
        "-p",
        "What is the capital of Germany?",
        "--max-new-tokens",
        "12",
        "--threads",
        "2",
    ];
    if let Some(a) = adapter {
        args.extend(["--adapter", s(a)]);
    }
    let out = swift(&args);
    ok(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn lora_on_the_smollm2_gguf_learns_the_fixture_resumes_exactly_and_loads_in_infer() {
    let model = smollm2();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let data = fixture();
    let mut args = lora_args(s(&model), s(&out), "24");
    args.extend([
        "--dataset",
        s(&data),
        "--split-dataset-ratio",
        "0.05",
        "--eval-steps",
        "12",
        "--save-steps",
        "12",
    ]);
    let r = swift(&args);
    ok(&r);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("trainable params: 2,442,240"), "{stderr}");
    assert!(stderr.contains("plan: "), "{stderr}");

    // The loss falls: mean of the last 5 logged steps at least 30% below the first 5.
    let l = losses(&out);
    assert_eq!(l.len(), 24, "{l:?}");
    let first: f64 = l[..5].iter().map(|x| x.1).sum::<f64>() / 5.0;
    let last: f64 = l[l.len() - 5..].iter().map(|x| x.1).sum::<f64>() / 5.0;
    assert!(last <= 0.7 * first, "first 5 {first}, last 5 {last}: {l:?}");

    // TensorBoard events parse and hold the run.
    let files = swift::train::events::event_files(&out.join("runs")).unwrap();
    assert_eq!(files.len(), 1);
    let ev = swift::train::events::read_scalars(&files[0]).unwrap();
    for tag in [
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "train/token_acc",
        "train/tokens_per_second",
        "eval/loss",
    ] {
        assert!(ev.iter().any(|e| e.tag == tag), "no {tag} in the events");
    }
    let tb: Vec<(i64, f32)> = ev
        .iter()
        .filter(|e| e.tag == "train/loss")
        .map(|e| (e.step, e.value))
        .collect();
    assert_eq!(tb.len(), 24);
    assert!((tb[0].1 as f64 - l[0].1).abs() < 1e-4);

    // peft's files and names.
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 8);
    assert_eq!(cfg["lora_alpha"], 32.0);
    assert_eq!(cfg["task_type"], "CAUSAL_LM");
    let st = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let names = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .len();
    assert_eq!(names, 30 * 7 * 2);
    let head = String::from_utf8_lossy(&st[..4096.min(st.len())]).into_owned();
    assert!(head.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "args.json",
        "images/train_loss.png",
        "images/eval_loss.png",
        "images/train_learning_rate.png",
        "images/train_grad_norm.png",
        "images/train_token_acc.png",
        "checkpoint-12/optimizer.safetensors",
        "checkpoint-24/adapter_model.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let args_json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("args.json")).unwrap()).unwrap();
    assert!(args_json["plan_reason"].as_str().unwrap().contains("QLoRA"));
    assert_eq!(args_json["data"]["report"]["train_rows"], 45);

    // The adapter changes the answer the way the data taught.
    let base = answer(&model, None);
    let tuned = answer(&model, Some(&out));
    assert!(!base.to_lowercase().contains("banana"), "base: {base}");
    assert!(tuned.to_lowercase().contains("banana"), "tuned: {tuned}");

    // Resume from checkpoint-12 in another folder: steps 13..24 match.
    let out2 = tmp.path().join("resumed");
    let ck = out.join("checkpoint-12");
    let mut args = lora_args(s(&model), s(&out2), "24");
    args.extend([
        "--dataset",
        s(&data),
        "--split-dataset-ratio",
        "0.05",
        "--eval-steps",
        "12",
        "--save-steps",
        "12",
        "--resume-from-checkpoint",
        s(&ck),
    ]);
    let r = swift(&args);
    ok(&r);
    let l2 = losses(&out2);
    assert_eq!(l2.len(), 24);
    for (a, b) in l.iter().zip(&l2).skip(12) {
        assert_eq!(a.0, b.0);
        assert!(
            (a.1 - b.1).abs() < 1e-4,
            "step {}: uninterrupted {} resumed {}",
            a.0,
            a.1,
            b.1
        );
    }
}

#[test]
fn ctrl_c_writes_a_checkpoint_exits_130_and_latest_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = tiny_chat_data(tmp.path(), 24);
    let out = tmp.path().join("run");
    let child = swift_cmd()
        .args(train_args("finetune", &model, &data, &out))
        .args([
            "--batch-size",
            "2",
            "--max-steps",
            "100000",
            "--logging-steps",
            "1",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a logged step (bounded, so a broken run cannot hang CI).
    let mut logged = false;
    for _ in 0..1200 {
        if std::fs::read_to_string(out.join("logging.jsonl")).is_ok_and(|t| t.lines().count() >= 2)
        {
            logged = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(logged, "no step was logged");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let r = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let (step, ck) = {
        let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_prefix("checkpoint-")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        v.sort();
        v.pop().expect("a checkpoint after Ctrl-C")
    };
    assert!(step >= 2);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["global_step"], step);
    assert!(!std::fs::read_dir(&out).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
    // `latest` picks it up and finishes one more step.
    let r = swift(&[
        "finetune",
        "--model",
        s(&model),
        "--dataset",
        s(&data),
        "--output-dir",
        s(&out),
        // ms-swift's spelling, a hidden alias.
        "--per_device_train_batch_size",
        "2",
        "--max-steps",
        &(step + 1).to_string(),
        "--logging-steps",
        "1",
        "--resume-from-checkpoint",
        "latest",
    ]);
    ok(&r);
    let l = losses(&out);
    assert_eq!(l.last().unwrap().0 as usize, step + 1);
    assert!(out.join("adapter_model.safetensors").exists());
}

#[test]
fn full_tuning_writes_an_hf_folder_that_infer_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "qwen2-tied");
    let data = tiny_chat_data(tmp.path(), 24);
    let out = tmp.path().join("run");
    let mut args = train_args("finetune", &model, &data, &out);
    args.extend([
        "--tuner",
        "full",
        "--batch-size",
        "4",
        "--max-steps",
        "12",
        "--learning-rate",
        "1e-3",
        "--logging-steps",
        "1",
    ]);
    let r = swift(&args);
    ok(&r);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("plan: full"), "{stderr}");
    let l = losses(&out);
    assert!(l.last().unwrap().1 < 0.7 * l[0].1, "{l:?}");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "checkpoint-12/optimizer.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let r = swift(&[
        "infer",
        "--model",
        s(&out),
        "-p",
        "the sea 3",
        "--max-new-tokens",
        "3",
    ]);
    ok(&r);
    // GGUF weights cannot be fully tuned: a clear error.
    let r = swift(&[
        "finetune",
        "--model",
        s(&smollm2()),
        "--dataset",
        s(&data),
        "--output-dir",
        s(&tmp.path().join("x")),
        "--tuner",
        "full",
        "--max-steps",
        "1",
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("quantized"));
}

#[test]
fn lora_nf4_qlora_and_gguf_qlora_lower_the_loss_alike() {
    // Issue 6: QLoRA straight on the Q4_1 GGUF and 4-bit NF4 QLoRA on the f32
    // weights each lower the loss like LoRA on the f32 weights does (mean of
    // the last 5 logged losses within 10% of LoRA's after the same steps).
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("smollm2-f32");
    let m = swift::model::Model::load_gguf(&smollm2()).unwrap();
    swift::model::export::write_hf(&m, &hf, &Default::default()).unwrap();
    drop(m);
    let tok = smollm2_tokenizer();
    tok.save(&hf).unwrap();
    let data = fixture();
    let run = |name: &str, model: &Path, extra: &[&str]| -> (Vec<(u64, f64)>, String, PathBuf) {
        let out = tmp.path().join(name);
        let mut args = train_args("finetune", model, &data, &out);
        args.extend([
            "--system",
            SYSTEM,
            "--batch-size",
            "2",
            "--max-steps",
            "10",
            "--learning-rate",
            "3e-4",
            "--warmup-steps",
            "1",
            "--logging-steps",
            "1",
            "--lora-dropout",
            "0",
            "--threads",
            "2",
        ]);
        args.extend(extra);
        let r = swift(&args);
        ok(&r);
        (
            losses(&out),
            String::from_utf8_lossy(&r.stderr).into_owned(),
            out,
        )
    };
    let mean = |l: &[(u64, f64)]| l.iter().map(|x| x.1).sum::<f64>() / l.len() as f64;
    let (lora, _, lora_out) = run("lora", &hf, &["--method", "lora"]);
    let (nf4, nf4_err, nf4_out) = run("nf4", &hf, &["--quant-bits", "4"]);
    let (gguf, gguf_err, _) = run("gguf", &smollm2(), &["--method", "qlora"]);
    assert!(
        nf4_err.contains("qlora (4-bit NF4 base quantized at load"),
        "{nf4_err}"
    );
    assert!(
        gguf_err.contains("qlora (LoRA on the GGUF's own quantized weights)"),
        "{gguf_err}"
    );
    for (name, l) in [("lora", &lora), ("nf4", &nf4), ("gguf", &gguf)] {
        assert_eq!(l.len(), 10, "{name}");
        assert!(
            mean(&l[5..]) < 0.7 * mean(&l[..5]),
            "{name} does not learn: {l:?}"
        );
    }
    let base = mean(&lora[5..]);
    for (name, l) in [("nf4", &nf4), ("gguf", &gguf)] {
        let m = mean(&l[5..]);
        eprintln!("last-5 mean loss: lora {base:.4}, {name} {m:.4}");
        assert!(
            (m - base).abs() <= 0.1 * base,
            "{name}: {m} vs LoRA's {base}"
        );
    }
    // The adapters are peft's; the NF4 one records its quantization.
    for out in [&lora_out, &nf4_out] {
        let st = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
        assert_eq!(
            safetensors::SafeTensors::deserialize(&st)
                .unwrap()
                .names()
                .len(),
            420
        );
    }
    // In swift's own file beside peft's config (peft warns about keys its
    // LoraConfig lacks).
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(nf4_out.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert!(cfg.get("swift_quantization").is_none(), "{cfg}");
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(nf4_out.join("swift_adapter.json")).unwrap())
            .unwrap();
    assert_eq!(rec["quantization"]["method"], "nf4");
    assert_eq!(rec["quantization"]["bits"], 4);
    // --quant-bits on a GGUF is a usage error.
    let r = swift(&[
        "finetune",
        "--model",
        s(&smollm2()),
        "--dataset",
        s(&data),
        "--quant-bits",
        "4",
        "--output-dir",
        s(&tmp.path().join("x")),
    ]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}
