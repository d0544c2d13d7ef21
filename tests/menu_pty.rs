//! `swift` with no arguments: a menu on a terminal (driven here through a
//! pseudo-terminal), the help and exit 2 otherwise.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{root, smollm2, SWIFT};
use expectrl::{Eof, Regex, Session};

/// The binary for a pseudo-terminal: `common::swift_cmd` would tie its
/// standard input to /dev/null, which the pty must own.
fn pty_cmd() -> Command {
    let mut cmd = Command::new(SWIFT);
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .env("SWIFT_NO_GPU", "1");
    cmd
}

fn spawn_menu(cache: &std::path::Path) -> Session {
    let mut cmd = pty_cmd();
    cmd.env("HF_HUB_CACHE", cache);
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
    let out = Command::new(SWIFT).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: swift"), "{err}");
    assert!(err.contains("no command given"), "{err}");
    assert!(out.stdout.is_empty());
}

const SMOLLM2: &str = "fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf";
const JOKE: &str = "Tell me a joke about cats.";

/// The most times one run of `n` words occurs in `text` (case and
/// punctuation ignored), and that run.
fn most_repeated_phrase(text: &str, n: usize) -> (usize, String) {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for win in words.windows(n) {
        *counts.entry(win.join(" ")).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, v)| (v, k))
        .max()
        .unwrap_or_default()
}

/// Ask the chat in `s` (at its prompt) one question; the answer is the text
/// up to the next prompt, which must come: the answer ended.
fn ask(s: &mut Session, question: &str) -> String {
    s.send_line(question).unwrap();
    let got = s.expect(">>> ").unwrap();
    let text = String::from_utf8_lossy(got.before()).replace('\r', "");
    // The terminal echoes the question first.
    let answer = match text.find(question) {
        Some(i) => text[i + question.len()..].to_string(),
        None => text,
    };
    answer.trim().to_string()
}

/// Issue 17: the menu's chat on the SmolLM2 GGUF looped ("a cat's favorite
/// food is a cat's favorite food, ...") until the 8,192-token window was
/// full, greedy decoding being the default for a model without a
/// generation_config. Now the chat samples with the defaults it prints, and
/// the answer ends.
#[test]
fn menu_chat_answers_a_joke_without_looping() {
    assert_eq!(smollm2(), root().join(SMOLLM2));
    let cache = tempfile::tempdir().unwrap();
    let mut s = spawn_menu(cache.path());
    s.set_expect_timeout(Some(Duration::from_secs(600)));
    s.expect("choice [2]: ").unwrap();
    s.send_line("1").unwrap();
    s.expect("model (a path, a hub id or a number)").unwrap();
    s.send_line(SMOLLM2).unwrap();
    s.expect(format!("running: swift infer --model {SMOLLM2}").as_str())
        .unwrap();
    // The chat's first line: the sampling in effect.
    s.expect(
        "sampling: temperature 0.8, top-k 40, top-p 0.9, repetition penalty 1.1 \
         (defaults: the model ships no generation_config), max 1024 new tokens",
    )
    .unwrap();
    s.expect(">>> ").unwrap();
    // The prompt returns: the answer ended, at the end of its turn or (about
    // one answer in a hundred, a rambling list) at the bound ...
    let answer = ask(&mut s, JOKE);
    assert!(!answer.is_empty());
    if let Some(i) = answer.find("(the answer stopped at ") {
        assert!(
            answer[i..].starts_with("(the answer stopped at 1024 new tokens"),
            "{answer}"
        );
    }
    // ... and says no phrase over and over (in 100 sampled answers no run
    // of 5 words came more than twice; greedy decoding repeats a run of 6
    // words 10 times in 120 tokens, see below).
    let (times, phrase) = most_repeated_phrase(&answer, 6);
    assert!(times < 4, "{phrase:?} {times} times in: {answer}");
    s.send_line("/exit").unwrap();
    s.expect(Eof).unwrap();
    let st = s.get_process_mut().wait().unwrap();
    assert!(matches!(st, expectrl::WaitStatus::Exited(_, 0)), "{st:?}");
}

/// The check above is a real one: greedy decoding (`--temperature 0`, the
/// old default) gives the looping answer, now cut at the length bound.
#[test]
fn chat_greedy_still_loops_and_stops_at_the_bound() {
    assert_eq!(smollm2(), root().join(SMOLLM2));
    let mut cmd = pty_cmd();
    cmd.args(["infer", "--model", SMOLLM2, "--temperature", "0"])
        .args(["--max-new-tokens", "120"]);
    let mut s = Session::spawn(cmd).expect("spawning swift in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(600)));
    s.expect("sampling: greedy (temperature 0 asked for), max 120 new tokens")
        .unwrap();
    s.expect(">>> ").unwrap();
    let answer = ask(&mut s, JOKE);
    assert!(
        answer.contains("(the answer stopped at 120 new tokens"),
        "{answer}"
    );
    let (times, phrase) = most_repeated_phrase(&answer, 6);
    assert!(times >= 4, "{phrase:?} {times} times in: {answer}");
    s.send_line("/exit").unwrap();
    s.expect(Eof).unwrap();
}
