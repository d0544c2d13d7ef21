//! The device a plan is made for (issue 17): `finetune` and `dpo` train on
//! the CPU, so a GPU in the machine must not move their plans onto it; and
//! `estimate-vram` plans for the device it names, never for another one
//! because of `--budget`. GPUs are faked through `SWIFT_FAKE_GPUS`, which the
//! command layer reads once in place of `nvidia-smi`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ok, read_json, swift_cmd, text, tiny_chat_data, tiny_model, tiny_pairs, train_args};
use serde_json::Value;

/// An 80 GiB H100 with 81,000 MiB free, as nvidia-smi would list it.
const H100: &str = "0, NVIDIA H100 80GB HBM3, 81559, 81000, 9.0";
const H100_FREE: u64 = 81_000 * 1024 * 1024;

fn swift(args: &[&str], gpus: Option<&str>) -> Output {
    let mut c = swift_cmd();
    c.args(args).env_remove("SWIFT_NO_GPU");
    match gpus {
        Some(g) => c.env("SWIFT_FAKE_GPUS", g),
        None => c.env("SWIFT_NO_GPU", "1").env_remove("SWIFT_FAKE_GPUS"),
    };
    c.output().expect("run swift")
}

fn plan_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("plan: "))
        .unwrap_or_else(|| panic!("no plan line in:\n{stderr}"))
}

/// What args.json says was planned: CPU RAM, swift's own trainer, f32.
fn assert_cpu_plan(out: &Path, stderr: &str) {
    let line = plan_line(stderr);
    assert!(line.contains("f32 on cpu (swift's trainer)"), "{line}");
    assert!(!line.contains("cuda"), "{line}");
    let args = read_json(&out.join("args.json"));
    let plan = &args["plan"];
    assert_eq!(plan["job"]["backend"], "candle", "{plan}");
    assert_eq!(plan["job"]["dtype"], "f32", "{plan}");
    assert_eq!(plan["job"]["cuda_context"], false, "{plan}");
    assert_ne!(plan["budget_bytes"].as_u64().unwrap(), H100_FREE, "{plan}");
}

/// Run `command` (finetune or dpo) for one step on a tiny model with an H100
/// in the inventory, `data` writing its dataset into a folder; checks that
/// the job planned for the CPU and names the sequence length it planned for.
fn one_step_beside_an_h100(command: &str, data: fn(&Path) -> PathBuf, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), "llama");
    let data = data(tmp.path());
    let out = tmp.path().join("run");
    let mut args = train_args(command, &model, &data, &out);
    args.extend(["--max-steps", "1", "--threads", "2"]);
    args.extend_from_slice(extra);
    let o = swift(&args, Some(H100));
    ok(&o);
    let err = text(&o.stderr);
    assert_cpu_plan(&out, &err);
    // The plan line names the sequence length it planned for and why.
    assert!(
        plan_line(&err).contains("(the data's longest; --max-length 2048 is the upper bound)"),
        "{err}"
    );
}

#[test]
fn finetune_with_a_gpu_in_the_machine_still_plans_for_the_cpu() {
    one_step_beside_an_h100("finetune", |d| tiny_chat_data(d, 4), &[]);
}

#[test]
fn dpo_with_a_gpu_in_the_machine_still_plans_for_the_cpu() {
    one_step_beside_an_h100("dpo", tiny_pairs, &["--batch-size", "2"]);
}

fn estimate(args: &[&str], gpus: Option<&str>) -> (Option<i32>, Value, String) {
    let mut v = vec![
        "estimate-vram",
        "--model",
        "fixtures/configs/llama-2-7b",
        "--json",
    ];
    v.extend_from_slice(args);
    let o = swift(&v, gpus);
    let json = serde_json::from_str(&text(&o.stdout)).unwrap_or(Value::Null);
    (o.status.code(), json, text(&o.stderr))
}

#[test]
fn estimate_vram_plans_for_the_device_it_names() {
    // auto: the machine's best device, the (faked) H100, its free memory,
    // a PyTorch run.
    let (code, v, err) = estimate(&["--method", "qlora"], Some(H100));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["device"], "cuda");
    assert_eq!(v["device_id"], "cuda:0");
    assert_eq!(v["engine"], "torch");
    assert_eq!(v["budget_bytes"], H100_FREE);
    // --device cpu on the same machine: the CPU, its RAM, swift's trainer.
    let (_, v, err) = estimate(&["--method", "qlora", "--device", "cpu"], Some(H100));
    assert_eq!(v["device"], "cpu", "{err}");
    assert_eq!(v["engine"], "swift");
    assert_eq!(v["budget_source"], "available RAM");
    // No GPU: auto is the CPU, and an explicit budget does not make it a GPU.
    let (_, v, err) = estimate(&["--method", "qlora", "--budget", "80GiB"], None);
    assert_eq!(v["device"], "cpu", "{err}");
    assert_eq!(v["engine"], "swift");
    assert_eq!(v["budget_bytes"], 80u64 << 30);
    // A GPU this machine lacks: only with a budget, and said so.
    let (code, _, err) = estimate(&["--device", "cuda"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no CUDA GPU") && err.contains("--budget"),
        "{err}"
    );
    let (code, v, err) = estimate(&["--device", "cuda", "--budget", "24GiB"], None);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["device"], "cuda");
    assert_eq!(v["engine"], "torch");
    assert!(
        v["device_name"]
            .as_str()
            .unwrap()
            .contains("none in this machine"),
        "{v}"
    );
    // swift's engine on a GPU is refused: swift does not train there yet.
    let (code, _, err) = estimate(
        &["--device", "cuda", "--budget", "24GiB", "--engine", "swift"],
        None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("CPU only"), "{err}");
    // A malformed fake inventory is an error, not a silent CPU.
    let (code, _, err) = estimate(&[], Some("an H100 please"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("SWIFT_FAKE_GPUS"), "{err}");
}
