//! What the test files share: where the repository and its fixtures are, the
//! SmolLM2 test model (a failure naming the fix when it is missing), the
//! built binary in a deterministic environment, tiny random models and data,
//! and the redaction of volatile values before a JSON snapshot.
//!
//! Every test target compiles this module on its own, so a helper that one
//! target does not call is not dead code.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The built `swift` binary.
pub const SWIFT: &str = env!("CARGO_BIN_EXE_swift");

/// The repository root (cargo runs the tests there too).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path as the `&str` a command line wants.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bytes a process wrote, as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A run's standard output.
pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// A run's standard error.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The SmolLM2 test model, a Q4_1 GGUF. It is not optional: a missing file
/// fails the test with the command that fetches it.
pub fn smollm2() -> PathBuf {
    let p = root().join("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run fixtures/fetch-smollm2.sh first",
        p.display()
    );
    p
}

/// The SmolLM2 tokenizer, read from the GGUF.
pub fn smollm2_tokenizer() -> swift::tokenizer::Tokenizer {
    swift::tokenizer::Tokenizer::load(&smollm2()).expect("loading the SmolLM2 tokenizer")
}

/// The folder of what PyTorch + transformers computed on SmolLM2
/// (`reference.json`, the PEFT `adapter/`): a copy in fixtures/ or the shared one.
pub fn reference_dir() -> PathBuf {
    for d in [
        root().join("fixtures/reference/smollm2"),
        root().join("../shared/reference/smollm2"),
        PathBuf::from("/work/shared/reference/smollm2"),
    ] {
        if d.join("reference.json").exists() {
            return d;
        }
    }
    panic!(
        "reference.json not found (fixtures/reference/smollm2/ or ../shared/reference/smollm2/)"
    );
}

/// `reference.json`, parsed.
pub fn reference() -> Value {
    read_json(&reference_dir().join("reference.json"))
}

/// A JSON file, parsed.
pub fn read_json(p: &Path) -> Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array of token ids: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The largest absolute difference between two equally long vectors.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A PEFT adapter for a loaded model in `dir`: rank 2 on the q, v and down
/// projections, `lora_alpha` `alpha`, A and B uniform in +-`scale`/2 from
/// `seed` (B zero with `b_zero`: then the adapter changes nothing).
pub fn write_adapter(
    m: &swift::model::Model,
    dir: &Path,
    scale: f32,
    alpha: u32,
    b_zero: bool,
    seed: u64,
) {
    use candle_core::{DType, Device, Tensor};
    use swift::model::export::{write_safetensors, RawTensor};
    std::fs::create_dir_all(dir).unwrap();
    let r = 2;
    let mut s = seed;
    let mut rnd = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    };
    let mut ts = Vec::new();
    for (i, layer) in m.layers.iter().enumerate() {
        for (group, module) in [
            ("self_attn", "q_proj"),
            ("self_attn", "v_proj"),
            ("mlp", "down_proj"),
        ] {
            let l = layer.linear(module).unwrap();
            let (n_in, n_out) = (l.in_features(), l.out_features());
            let a = Tensor::from_vec(rnd(r * n_in), (r, n_in), &Device::Cpu).unwrap();
            let b = if b_zero {
                Tensor::zeros((n_out, r), DType::F32, &Device::Cpu).unwrap()
            } else {
                Tensor::from_vec(rnd(r * n_out), (n_out, r), &Device::Cpu).unwrap()
            };
            let p = format!("base_model.model.model.layers.{i}.{group}.{module}");
            ts.push(RawTensor::f32(&format!("{p}.lora_A.weight"), &a).unwrap());
            ts.push(RawTensor::f32(&format!("{p}.lora_B.weight"), &b).unwrap());
        }
    }
    write_safetensors(&dir.join("adapter_model.safetensors"), &ts).unwrap();
    let cfg = serde_json::json!({"peft_type": "LORA", "r": r, "lora_alpha": alpha,
        "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"],
        "use_rslora": false, "bias": "none"});
    std::fs::write(dir.join("adapter_config.json"), cfg.to_string()).unwrap();
}

/// The binary in the repository root, in an environment that does not
/// depend on the machine or the caller's shell: no GPU probing (tests that
/// want a GPU fake one with `SWIFT_FAKE_GPUS`), no colour, no API key, no
/// terminal width from `COLUMNS`, nothing on standard input.
pub fn swift_cmd() -> Command {
    let mut c = Command::new(SWIFT);
    c.current_dir(root())
        .env("SWIFT_NO_GPU", "1")
        .env("NO_COLOR", "1")
        .env_remove("SWIFT_API_KEY")
        .env_remove("COLUMNS")
        .stdin(Stdio::null());
    c
}

/// Run `swift ARGS` to the end (see [`swift_cmd`]).
pub fn swift(args: &[&str]) -> Output {
    swift_cmd().args(args).output().expect("running swift")
}

/// Assert a run succeeded, showing both streams when it did not.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// A successful run's standard output, parsed as one JSON document.
pub fn ok_json(o: &Output) -> Value {
    ok(o);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&o.stdout)))
}

/// The start of a training run's command line (`finetune` or `dpo`):
/// `COMMAND --model M --dataset D --output-dir OUT`; the caller adds the rest.
pub fn train_args<'a>(
    command: &'a str,
    model: &'a Path,
    data: &'a Path,
    out: &'a Path,
) -> Vec<&'a str> {
    vec![
        command,
        "--model",
        s(model),
        "--dataset",
        s(data),
        "--output-dir",
        s(out),
    ]
}

/// A short LoRA run on SmolLM2 that learns the bananas fixture
/// (fixtures/train/bananas.jsonl) in a few dozen steps: batch 2 without
/// accumulation, learning rate 1e-3 after 2 warm-up steps, a log record a
/// step, 2 threads. Add `--max-steps`.
pub const QUICK_LORA: &[&str] = &[
    "--batch-size",
    "2",
    "--gradient-accumulation-steps",
    "1",
    "--learning-rate",
    "1e-3",
    "--warmup-steps",
    "2",
    "--logging-steps",
    "1",
    "--threads",
    "2",
];

/// Every record of a training run's `logging.jsonl`.
pub fn training_log(dir: &Path) -> Vec<Value> {
    let p = dir.join("logging.jsonl");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", p.display())))
        .collect()
}

/// Whether `python3` can import `modules` (as an import statement lists
/// them), for checks against an optional Python peer. Without them the check
/// is skipped and says so on stderr, unless `require_var` is set (CI sets
/// it where it installed the peer): then that is a failure. `install` says
/// how to get them, `skipped` what goes unchecked.
pub fn python_has(modules: &str, require_var: &str, install: &str, skipped: &str) -> bool {
    let have = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        assert!(
            std::env::var_os(require_var).is_none(),
            "{require_var} is set but python3 cannot import {modules} ({install})"
        );
        eprintln!(
            "SKIPPED: python3 cannot import {modules}, so {skipped} ({install}; set \
             {require_var}=1 to make this a failure)"
        );
    }
    have
}

/// A tiny random llama-family model of `arch` (seed 9) in `dir/model`.
pub fn tiny_model(dir: &Path, arch: &str) -> PathBuf {
    let m = dir.join("model");
    swift::model::testing::write_tiny_model(&m, arch, 9).unwrap();
    m
}

/// `n` chat rows in `dir/data.jsonl`: the same answer to numbered questions.
pub fn tiny_chat_data(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("data.jsonl");
    let rows: String = (0..n)
        .map(|i| {
            format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"the sea {i}\"}}, {{\"role\": \"assistant\", \"content\": \"an answer at the inn\"}}]}}\n"
            )
        })
        .collect();
    std::fs::write(&p, rows).unwrap();
    p
}

/// 16 preference pairs in `dir/pairs.jsonl`: the chosen answer is always
/// the same sentence, the rejected one another.
pub fn tiny_pairs(dir: &Path) -> PathBuf {
    let p = dir.join("pairs.jsonl");
    let rows: String = (0..16)
        .map(|i| {
            format!(
                "{{\"prompt\": \"the sea {i}\", \"chosen\": \"an answer at the inn\", \"rejected\": \"the water is wet\"}}\n"
            )
        })
        .collect();
    std::fs::write(&p, rows).unwrap();
    p
}

/// Make a JSON result snapshot-stable: the value of every key named in
/// `volatile` (at any depth) becomes `"[key]"`, and in every string `dir`
/// (a test's temporary folder) becomes `[dir]` and the repository root
/// `[root]`. What stays is the shape and the stable values.
pub fn redact(v: &mut Value, dir: &Path, volatile: &[&str]) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if volatile.contains(&k.as_str()) {
                    *x = Value::String(format!("[{k}]"));
                } else {
                    redact(x, dir, volatile);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, dir, volatile)),
        Value::String(t) => {
            *t = t.replace(s(dir), "[dir]").replace(s(&root()), "[root]");
        }
        _ => {}
    }
}
