//! Adapters written by `swift finetune` load in the real peft
//! (`PeftModel.from_pretrained` on the matching transformers model) without
//! a single warning, and with the weights swift saved: LoRA on an HF folder,
//! 4-bit NF4 QLoRA on the same folder, and QLoRA on a GGUF of it. swift's
//! own record (the base's quantization) lives in `swift_adapter.json`,
//! never in peft's `adapter_config.json`.
//!
//! Needs `python3` with torch, transformers and peft
//! (`fixtures/requirements-ci.txt`; CI installs it). Without them the test
//! says that it skipped; with `SWIFT_REQUIRE_PEFT` set (as in CI) that is a
//! failure instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    ok, python_has, read_json, root, s, swift_cmd, tiny_chat_data, tiny_model, train_args,
};

/// `swift ARGS`, which must succeed.
fn swift(args: &[&str]) {
    ok(&swift_cmd().args(args).output().expect("running swift"));
}

#[test]
fn peft_loads_swift_adapters_without_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = tiny_chat_data(tmp.path(), 8);
    // The same weights as a GGUF (q8_0), for QLoRA on a GGUF's own blocks.
    let gguf = tmp.path().join("model.q8_0.gguf");
    swift(&[
        "merge",
        "--model",
        s(&model),
        "--output",
        s(&gguf),
        "--format",
        "gguf",
        "--quant",
        "q8_0",
    ]);
    let train = |name: &str, base: &Path, extra: &[&str]| -> PathBuf {
        let out = tmp.path().join(name);
        let mut args = train_args("finetune", base, &data, &out);
        args.extend([
            "--batch-size",
            "2",
            "--max-steps",
            "3",
            "--learning-rate",
            "1e-2",
            "--warmup-steps",
            "0",
            "--threads",
            "2",
        ]);
        args.extend_from_slice(extra);
        swift(&args);
        out
    };
    let lora = train("lora", &model, &["--method", "lora"]);
    let nf4 = train("nf4", &model, &["--quant-bits", "4"]);
    let qgguf = train("gguf", &gguf, &["--method", "qlora"]);

    // swift's record is beside peft's config, not in it.
    for (dir, method) in [(&lora, None), (&nf4, Some("nf4")), (&qgguf, Some("gguf"))] {
        let cfg = read_json(&dir.join("adapter_config.json"));
        assert!(cfg.get("swift_quantization").is_none(), "{cfg}");
        let rec = read_json(&dir.join("swift_adapter.json"));
        assert_eq!(rec["schema_version"], 1);
        assert_eq!(rec["quantization"]["method"].as_str(), method, "{rec}");
    }
    let rec = read_json(&qgguf.join("swift_adapter.json"));
    assert!(
        rec["quantization"]["types"]["Q8_0"].as_u64().unwrap() > 0,
        "{rec}"
    );

    if !python_has(
        "torch, transformers, peft",
        "SWIFT_REQUIRE_PEFT",
        "python3 -m pip install -r fixtures/requirements-ci.txt",
        "adapters were not loaded in peft",
    ) {
        return;
    }
    let run = |adapters: &[&PathBuf]| {
        let o = Command::new("python3")
            .arg(root().join("fixtures/peft_load.py"))
            .arg(&model)
            .args(adapters)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.success(), out, err)
    };
    let (ok, out, err) = run(&[&lora, &nf4, &qgguf]);
    assert!(ok, "peft did not load the adapters cleanly:\n{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{out}{err}"
    );
    eprintln!("{out}");
    // The check can fail: the key older swift wrote into adapter_config.json
    // is what peft warned about.
    let old = tmp.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(
        nf4.join("adapter_model.safetensors"),
        old.join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut cfg = read_json(&nf4.join("adapter_config.json"));
    cfg["swift_quantization"] = read_json(&nf4.join("swift_adapter.json"))["quantization"].clone();
    std::fs::write(old.join("adapter_config.json"), cfg.to_string()).unwrap();
    let (ok, out, err) = run(&[&old]);
    assert!(
        !ok && err.contains("swift_quantization"),
        "peft's warning about an unknown key was not caught:\n{out}{err}"
    );
}
