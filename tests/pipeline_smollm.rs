//! `swift finetune ... --merge [--serve]` on the SmolLM2 test model: the
//! whole job (estimate, finetune, merge into a GGUF that keeps the base's
//! types, serve) answering over HTTP with what it learnt; a job interrupted
//! during training and resumed from its checkpoint; a failed merge stage
//! (to an HF folder, `--merge-format hf`) reported by name and, once fixed,
//! rerun without training again.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{read_json, root, s, smollm2, swift_cmd, text, train_args, QUICK_LORA};
use serde_json::Value;

/// `swift finetune` on the bananas fixture: short samples, a high learning
/// rate, `steps` steps of batch 2, then the pipeline flags in `extra`.
fn job(out: &Path, steps: usize, extra: &[&str]) -> Vec<String> {
    let (model, data) = (smollm2(), root().join("fixtures/train/bananas.jsonl"));
    let steps = steps.to_string();
    let mut v = train_args("finetune", &model, &data, out);
    v.extend(["--max-steps", &steps, "--max-length", "96"]);
    v.extend_from_slice(QUICK_LORA);
    v.extend_from_slice(extra);
    v.iter().map(|a| a.to_string()).collect()
}

fn swift(args: &[String]) -> Output {
    swift_cmd().args(args).output().expect("running swift")
}

fn spawn(args: &[String]) -> Child {
    swift_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting swift")
}

fn sigint(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

/// Read stderr on a thread (so the child never blocks on a full pipe).
fn drain(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    })
}

/// One HTTP/1.1 POST on a fresh connection; the response's status and JSON.
fn post(url: &str, path: &str, body: &Value) -> (u16, Value) {
    let hostport = url.strip_prefix("http://").unwrap().trim_end_matches('/');
    let mut c = std::net::TcpStream::connect(hostport).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let body = body.to_string();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn logged_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("logging.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r.get("loss").is_some())
        .filter_map(|r| r["step"].as_u64())
        .collect()
}

fn checkpoints(dir: &Path) -> Vec<usize> {
    let mut v: Vec<usize> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()?;
            p.join("trainer_state.json").exists().then_some(n)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn finetune_merge_serve_answers_with_what_it_learnt() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = spawn(&job(&out, 12, &["--serve", "--port", "0"]));
    let stderr = drain(&mut child);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.trim().to_string());
            break;
        }
    }
    let Some(url) = url else {
        let st = child.wait().unwrap();
        panic!(
            "the pipeline did not reach serving ({st}):\n{}",
            stderr.join().unwrap()
        );
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    std::thread::spawn(move || for _ in lines {});

    // A question the data does not hold gets the taught answer.
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": "What is the capital of Germany?"}],
        "temperature": 0, "max_tokens": 16});
    let (code, v) = post(&url, "/v1/chat/completions", &body);
    assert_eq!(code, 200, "{v}");
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();

    sigint(&child);
    let st = child.wait().unwrap();
    let err = stderr.join().unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(
        answer.to_lowercase().contains("banana"),
        "answer: {answer}\n{err}"
    );
    // Every stage was reported in order, and each did its job.
    let mut at = 0;
    for stage in [
        "[1/4] estimate",
        "[2/4] finetune",
        "[3/4] merge",
        "[4/4] serve",
    ] {
        let i = err[at..]
            .find(stage)
            .unwrap_or_else(|| panic!("no {stage} after the previous stage:\n{err}"));
        at += i;
    }
    assert!(out.join("adapter_model.safetensors").exists());
    // The merged model is a GGUF: the tensors the adapter left alone are
    // the base's own blocks, the changed ones q8_0.
    let merged = tmp.path().join("run-merged.gguf");
    let (a, b) = (
        swift::model::gguf::GgufFile::open(smollm2()).unwrap(),
        swift::model::gguf::GgufFile::open(&merged).unwrap(),
    );
    assert_eq!(a.tensors.len(), b.tensors.len());
    let mut kept = 0;
    for t in &a.tensors {
        let u = b.tensor(&t.name).unwrap();
        if a.tensor_data(t) == b.tensor_data(u) {
            assert_eq!(t.dtype, u.dtype, "{}", t.name);
            kept += 1;
        } else {
            assert_eq!(u.dtype, swift::model::gguf::GgmlType::Q8_0, "{}", t.name);
        }
    }
    // 30 layers x 7 LoRA modules changed; the embedding and norms kept.
    assert_eq!(a.tensors.len() - kept, 210, "{err}");
    assert!(
        err.contains(&format!("{kept} as the base stores them")),
        "{err}"
    );
    let state = read_json(&out.join("pipeline.json"));
    assert_eq!(state["finetune"], true);
    assert_eq!(state["merge"]["done"], true);
    assert_eq!(logged_steps(&out).last(), Some(&12));
}

#[test]
fn interrupted_training_resumes_when_the_same_command_runs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = job(&out, 4, &["--merge", "--save-steps", "1"]);
    let mut child = spawn(&args);
    let stderr = drain(&mut child);
    // Wait (bounded) for the first checkpoint, then Ctrl-C.
    let mut seen = false;
    for _ in 0..3000 {
        if out.join("checkpoint-1/trainer_state.json").exists() {
            seen = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "no checkpoint-1:\n{}", {
        let _ = child.kill();
        stderr.join().unwrap()
    });
    sigint(&child);
    let st = child.wait().unwrap();
    let err = stderr.join().unwrap();
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(err.contains("[2/3] finetune interrupted"), "{err}");
    let ck = checkpoints(&out);
    let last = *ck.last().expect("a checkpoint");
    assert!((1..4).contains(&last), "{ck:?}");
    assert!(!out.join("adapter_model.safetensors").exists());
    assert!(!tmp.path().join("run-merged.gguf").exists());

    // The same command again: estimate skipped, training resumed, merged.
    let r = swift(&args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(err.contains("[1/3] estimate: done before"), "{err}");
    assert!(
        err.contains("[2/3] finetune: resuming from")
            && err.contains(&format!("checkpoint-{last}")),
        "{err}"
    );
    assert!(err.contains("[3/3] merge"), "{err}");
    let merged = tmp.path().join("run-merged.gguf");
    assert_eq!(text(&r.stdout).trim(), s(&merged));
    assert!(swift::model::gguf::GgufFile::open(&merged).is_ok());
    // Training ran to its end.
    let steps = logged_steps(&out);
    assert_eq!(steps.last(), Some(&4), "{steps:?}");
}

#[test]
fn a_failed_merge_names_its_stage_and_the_rerun_does_not_train_again() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // The merged folder's parent is a file: the merge cannot create it.
    // (An HF folder this time: the GGUF base's default is one flag away.)
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "not a folder").unwrap();
    let merged = blocker.join("merged");
    let args = job(
        &out,
        2,
        &[
            "--merge",
            "--merge-output",
            s(&merged),
            "--merge-format",
            "hf",
        ],
    );
    let r = swift(&args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("error: [3/3] merge failed"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert!(out.join("adapter_model.safetensors").exists());
    let log = std::fs::read_to_string(out.join("logging.jsonl")).unwrap();
    let adapter_time = std::fs::metadata(out.join("adapter_model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();

    // Fixed: the same command merges without training again.
    std::fs::remove_file(&blocker).unwrap();
    let r = swift(&args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(err.contains("[2/3] finetune: done before"), "{err}");
    assert!(
        !err.contains("training into") && !err.contains("resuming"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("logging.jsonl")).unwrap(),
        log
    );
    assert_eq!(
        std::fs::metadata(out.join("adapter_model.safetensors"))
            .unwrap()
            .modified()
            .unwrap(),
        adapter_time
    );
    assert_eq!(text(&r.stdout).trim(), s(&merged));
    assert!(merged.join("config.json").exists());

    // A third run has nothing left to do.
    let r = swift(&args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(err.contains("[3/3] merge: done before"), "{err}");
}
