//! `swift` with no arguments: a menu on a terminal (driven here through a
//! pseudo-terminal), the help and exit 2 otherwise.

use expectrl::{Eof, Regex, Session};
use std::process::Command;
use std::time::Duration;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spawn_menu(cache: &std::path::Path) -> Session {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swift"));
    cmd.current_dir(root())
        .env("HF_HUB_CACHE", cache)
        .env("NO_COLOR", "1")
        .env("SWIFT_NO_GPU", "1");
    let mut s = Session::spawn(cmd).expect("spawning swift in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    s
}

#[test]
fn menu_asks_shows_the_command_and_runs_it() {
    let cache = tempfile::tempdir().unwrap();
    // A cached model shows up as a suggestion.
    std::fs::create_dir_all(
        cache
            .path()
            .join("models--HuggingFaceTB--SmolLM2-135M-Instruct"),
    )
    .unwrap();
    let mut s = spawn_menu(cache.path());
    s.expect("what would you like to do?").unwrap();
    s.expect("choice [2]: ").unwrap();
    s.send_line("7").unwrap();
    s.expect("HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
    s.expect("model (a path, a hub id or a number)").unwrap();
    s.send_line("fixtures/configs/smollm2-135m").unwrap();
    s.expect("method (auto, infer, lora, qlora, full) [auto]: ")
        .unwrap();
    s.send_line("lora").unwrap();
    s.expect("running: swift estimate-vram --model fixtures/configs/smollm2-135m --method lora")
        .unwrap();
    // The command itself runs: estimate-vram's verdict.
    s.expect(Regex("fits: (yes|NO)")).unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn menu_fine_tune_merge_and_serve_runs_the_pipeline_command() {
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("run");
    let out = out.to_str().unwrap();
    let mut s = spawn_menu(cache.path());
    s.expect("choice [2]: ").unwrap();
    s.send_line("3").unwrap();
    s.expect("model (a path, a hub id or a number)").unwrap();
    s.send_line("missing.gguf").unwrap();
    s.expect("dataset (a path, a hub id or a number): ")
        .unwrap();
    s.send_line("fixtures/train/bananas.jsonl").unwrap();
    s.expect("output folder [output]: ").unwrap();
    s.send_line(out).unwrap();
    s.expect("port [8080]: ").unwrap();
    s.send_line("0").unwrap();
    // One scriptable command: the stages live in `swift finetune --serve`.
    let line = format!(
        "running: swift finetune --model missing.gguf --dataset fixtures/train/bananas.jsonl --output-dir {out} --serve --port 0"
    );
    s.expect(line.as_str()).unwrap();
    // It runs, and its first stage stops it, named.
    s.expect("error: [1/4] estimate failed").unwrap();
    s.expect("missing.gguf does not exist").unwrap();
    s.expect(Eof).unwrap();
    let st = s.get_process_mut().wait().unwrap();
    assert!(matches!(st, expectrl::WaitStatus::Exited(_, 1)), "{st:?}");
}

#[test]
fn menu_quit_and_closed_input() {
    let cache = tempfile::tempdir().unwrap();
    let mut s = spawn_menu(cache.path());
    s.expect("choice [2]: ").unwrap();
    s.send_line("q").unwrap();
    s.expect(Eof).unwrap();
    let st = s.get_process_mut().wait().unwrap();
    assert!(matches!(st, expectrl::WaitStatus::Exited(_, 0)), "{st:?}");
}

#[test]
fn no_command_off_a_terminal_prints_help_and_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_swift")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: swift"), "{err}");
    assert!(err.contains("no command given"), "{err}");
    assert!(out.stdout.is_empty());
}
