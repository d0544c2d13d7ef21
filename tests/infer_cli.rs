//! `swift infer` from the outside: the built binary on the SmolLM2 test
//! model (run `fixtures/fetch-smollm2.sh` first).

mod common;

use std::process::{Output, Stdio};

use common::{ok_json, reference_dir, smollm2, stderr, stdout, swift_cmd};

const FRANCE: &str = "What is the capital of France?";

/// Run `swift <args>` in a fresh temp dir with `stdin` as standard input.
fn swift(args: &[&str], stdin: Option<&str>) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = swift_cmd();
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("RAYON_NUM_THREADS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        let text = text.to_string();
        // Write from a thread: a long prompt may fill the pipe before the
        // child reads it.
        std::thread::spawn(move || {
            let _ = w.write_all(text.as_bytes());
        });
    }
    (child.wait_with_output().unwrap(), dir)
}

fn infer(extra: &[&str], stdin: Option<&str>) -> Output {
    let m = smollm2();
    let mut args = vec!["infer", "--model", m.to_str().unwrap()];
    args.extend_from_slice(extra);
    swift(&args, stdin).0
}

#[test]
fn infer_france_greedy_answers_paris() {
    let o = infer(&["--prompt", FRANCE, "--temperature", "0"], None);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "The capital of France is Paris.\n");
    // Talk goes to stderr: loading and speed.
    let err = stderr(&o);
    assert!(err.contains("loaded"), "{err}");
    assert!(err.contains("tok/s"), "{err}");
}

#[test]
fn infer_quiet_prints_only_the_answer() {
    let o = infer(&["-q", "--prompt", FRANCE, "--temperature", "0"], None);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "The capital of France is Paris.\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn infer_json_has_the_fields() {
    let o = infer(&["--prompt", FRANCE, "--temperature", "0", "--json"], None);
    let v = ok_json(&o);
    assert_eq!(v["text"], "The capital of France is Paris.");
    assert_eq!(v["finish_reason"], "stop");
    // The SmolLM2 template adds its default system prompt: 37 tokens (as in
    // the PyTorch reference); 7 answer tokens and <|im_end|>.
    assert_eq!(v["prompt_tokens"], 37);
    assert_eq!(v["completion_tokens"], 8);
    assert_eq!(v["total_tokens"], 45);
    for k in [
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "prefill_seconds",
        "decode_seconds",
    ] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
}

#[test]
fn infer_reads_the_prompt_from_stdin() {
    let o = infer(&["--temperature", "0"], Some(&format!("{FRANCE}\n")));
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "The capital of France is Paris.\n");
}

#[test]
fn infer_without_any_prompt_is_a_usage_error() {
    let o = infer(&[], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no prompt"), "{}", stderr(&o));
}

#[test]
fn infer_seed_reproduces_sampling() {
    let run = |seed: &str| {
        let o = infer(
            &[
                "--prompt",
                "Write a poem about the sea.",
                "--temperature",
                "1.0",
                "--seed",
                seed,
                "--max-new-tokens",
                "24",
                "--json",
            ],
            None,
        );
        ok_json(&o)["text"].as_str().unwrap().to_string()
    };
    let a = run("7");
    assert_eq!(a, run("7"));
    assert_ne!(a, run("8"));
}

#[test]
fn infer_max_new_tokens_with_ignore_eos_is_length() {
    let o = infer(
        &[
            "--prompt",
            FRANCE,
            "--temperature",
            "0",
            "--max-new-tokens",
            "12",
            "--ignore-eos",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    assert_eq!(v["completion_tokens"], 12);
    assert_eq!(v["finish_reason"], "length");
    assert!(v["text"]
        .as_str()
        .unwrap()
        .starts_with("The capital of France is Paris."));
    // The snake_case spelling works too.
    let o = infer(
        &[
            "--prompt",
            FRANCE,
            "--temperature",
            "0",
            "--max_new_tokens",
            "3",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    assert_eq!(v["text"], "The capital of");
    assert_eq!(v["finish_reason"], "length");
}

#[test]
fn infer_stop_string_is_not_printed() {
    let o = infer(
        &[
            "--prompt",
            FRANCE,
            "--temperature",
            "0",
            "--stop",
            " Paris",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    assert_eq!(v["text"], "The capital of France is");
    assert_eq!(v["finish_reason"], "stop");
}

#[test]
fn infer_raw_skips_the_chat_template() {
    let o = infer(
        &[
            "--raw",
            "--prompt",
            "The capital of France is",
            "--temperature",
            "0",
            "--max-new-tokens",
            "4",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    // The raw prompt is only its own 5 tokens.
    assert_eq!(v["prompt_tokens"], 5);
    assert_eq!(v["completion_tokens"], 4);
}

#[test]
fn infer_system_message_changes_the_prompt() {
    let o = infer(
        &[
            "--system",
            "You answer in one short sentence.",
            "--prompt",
            "Why is the sky blue?",
            "--temperature",
            "0",
            "--max-new-tokens",
            "24",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    // The PyTorch reference's greedy continuation of this exact chat.
    assert_eq!(
        v["text"],
        "The sky blue is a result of the Earth's atmosphere scattering sunlight in a range of colors, primarily blue. This process"
    );
}

#[test]
fn infer_with_the_reference_adapter() {
    let a = reference_dir().join("adapter");
    let o = infer(
        &[
            "--adapter",
            a.to_str().unwrap(),
            "--prompt",
            FRANCE,
            "--temperature",
            "0",
            "--max-new-tokens",
            "8",
            "--json",
        ],
        None,
    );
    let v = ok_json(&o);
    // With the adapter the first answer token changes (PyTorch: 15319 beats 504 "The").
    assert!(
        !v["text"].as_str().unwrap().starts_with("The capital"),
        "{v}"
    );
    let o = infer(&["--adapter", "no-such-adapter", "--prompt", FRANCE], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("adapter folder not found: no-such-adapter"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn infer_threads_and_template_flags() {
    let o = infer(
        &[
            "--threads",
            "1",
            "--template",
            "chatml",
            "--prompt",
            FRANCE,
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
        ],
        None,
    );
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).starts_with("The capital of France"),
        "{}",
        stdout(&o)
    );
    let o = infer(
        &["--template", "no-such-template", "--prompt", FRANCE],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-template"));
    let o = infer(&["--threads", "0", "--prompt", FRANCE], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn infer_bad_sampling_values_are_usage_errors() {
    let o = infer(&["--prompt", FRANCE, "--top-p", "0"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("top_p"), "{}", stderr(&o));
}

#[test]
fn infer_missing_model_file() {
    let (o, _d) = swift(
        &["infer", "--model", "no/such/model.gguf", "--prompt", "hi"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("model not found: no/such/model.gguf"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn infer_truncated_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(smollm2()).unwrap();
    for cut in [100_000usize, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.path().join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (o, _d) = swift(
            &["infer", "--model", p.to_str().unwrap(), "--prompt", "hi"],
            None,
        );
        assert_eq!(o.status.code(), Some(1), "cut at {cut}");
        let err = stderr(&o);
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn infer_not_a_gguf_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.gguf");
    std::fs::write(&p, b"this is not a model at all").unwrap();
    let (o, _d) = swift(
        &["infer", "--model", p.to_str().unwrap(), "--prompt", "hi"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a GGUF file"), "{}", stderr(&o));
}

#[test]
fn infer_unsupported_architecture() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": 768}"#,
    )
    .unwrap();
    let (o, _d) = swift(
        &[
            "infer",
            "--model",
            dir.path().to_str().unwrap(),
            "--prompt",
            "hi",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("unsupported architecture"), "{err}");
    assert!(err.contains("mamba"), "{err}");
}

#[test]
fn infer_prompt_longer_than_the_context() {
    let long = "word ".repeat(9000);
    let o = infer(&["--raw"], Some(&long));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("context window is 8192 tokens"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn infer_help_says_the_defaults() {
    let (o, _d) = swift(&["infer", "--help"], None);
    assert!(o.status.success());
    let h = stdout(&o);
    for s in [
        "--model",
        "--adapter",
        "--max-new-tokens",
        "--temperature",
        "greedy",
        "generation_config.json",
        "--stop",
        "--ignore-eos",
        "--json",
        "/clear",
        "\"\"\"",
    ] {
        assert!(h.contains(s), "--help lacks {s}:\n{h}");
    }
}
