//! `swift` with no arguments on a terminal: a menu that asks only for the
//! decisions a job needs (with defaults: recently cached models and datasets
//! first), prints the exact command line it is about to run, so the
//! scriptable form is learnt on the way, and runs it as a child process.
//!
//! "Fine-tune, merge and serve" is `swift finetune ... --serve`: the stages,
//! their reports and the resuming live in that command (`commands::pipeline`),
//! so the menu and a script run the same job.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::error::Exit;
use crate::hub::{Hub, HubOptions};
use crate::printer::Printer;

/// One choice of the top menu: its key, label and the job it runs.
const ITEMS: [(&str, &str); 10] = [
    ("1", "chat with a model"),
    (
        "2",
        "fine-tune a model (LoRA / QLoRA, chosen for this machine)",
    ),
    ("3", "fine-tune, merge and serve (one job)"),
    ("4", "align with preference data (DPO)"),
    ("5", "merge an adapter into its model"),
    ("6", "evaluate a model"),
    ("7", "estimate memory (will it fit?)"),
    ("8", "serve a model (OpenAI-compatible API)"),
    ("9", "download a model or dataset"),
    ("q", "quit"),
];

/// Reads answers line by line and writes prompts; generic so tests can
/// drive it without a terminal.
pub struct Asker<R, W> {
    input: R,
    out: W,
}

impl<R: BufRead, W: Write> Asker<R, W> {
    pub fn new(input: R, out: W) -> Self {
        Asker { input, out }
    }

    /// Ask one question; an empty answer takes the default. End of input
    /// is an error (the user closed the terminal).
    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        loop {
            match default {
                Some(d) if !d.is_empty() => write!(self.out, "{question} [{d}]: ")?,
                _ => write!(self.out, "{question}: ")?,
            }
            self.out.flush()?;
            let mut line = String::new();
            if self.input.read_line(&mut line)? == 0 {
                bail!(Exit::Interrupted);
            }
            let answer = line.trim();
            if !answer.is_empty() {
                return Ok(answer.to_string());
            }
            if let Some(d) = default.filter(|d| !d.is_empty()) {
                return Ok(d.to_string());
            }
            writeln!(self.out, "  (an answer is needed)")?;
        }
    }

    /// Ask for a model or dataset: a path or hub id, offering the recent
    /// ones by number.
    fn ask_source(&mut self, what: &str, recent: &[String]) -> Result<String> {
        if !recent.is_empty() {
            writeln!(self.out, "recent {what}s:")?;
            for (i, r) in recent.iter().enumerate().take(9) {
                writeln!(self.out, "  {}) {r}", i + 1)?;
            }
        }
        let default = recent.first().map(String::as_str);
        let answer = self.ask(&format!("{what} (a path, a hub id or a number)"), default)?;
        if let Ok(n) = answer.parse::<usize>() {
            if (1..=recent.len().min(9)).contains(&n) {
                return Ok(recent[n - 1].clone());
            }
        }
        Ok(answer)
    }
}

/// Models (`org/name`) and datasets in the Hugging Face cache, newest first.
fn cached(kind: &str) -> Vec<String> {
    let opts = HubOptions::from_env();
    let root = opts.cache_root(Hub::HuggingFace);
    let prefix = format!("{kind}--");
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_prefix(&prefix)?.replacen("--", "/", 1);
            let t = e.metadata().ok()?.modified().ok()?;
            Some((t, id))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, id)| id).collect()
}

/// `.gguf` files in the current folder and under `fixtures/cache/`, for the
/// model suggestions.
fn local_ggufs() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [Path::new("."), Path::new("fixtures/cache")] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut v: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
                .map(|p| p.strip_prefix("./").unwrap_or(&p).display().to_string())
                .collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}

/// Quote an argument for a POSIX shell when it needs it.
pub fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// The command line as a user would type it.
pub fn command_line(args: &[String]) -> String {
    std::iter::once("swift".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the menu decided: one swift invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The arguments after `swift`.
    pub args: Vec<String>,
}

/// Ask the questions of the menu and return the job (None: quit).
pub fn ask_job<R: BufRead, W: Write>(a: &mut Asker<R, W>) -> Result<Option<Job>> {
    writeln!(a.out, "swift: what would you like to do?")?;
    for (k, label) in ITEMS {
        writeln!(a.out, "  {k}) {label}")?;
    }
    let choice = loop {
        let c = a.ask("choice", Some("2"))?;
        if ITEMS.iter().any(|(k, _)| *k == c) {
            break c;
        }
        writeln!(a.out, "  (choose one of 1-9 or q)")?;
    };
    let mut models = local_ggufs();
    models.extend(cached("models"));
    let datasets = cached("datasets");
    let s = |x: &str| x.to_string();
    let one = |args: Vec<String>| Job { args };
    let job = match choice.as_str() {
        "q" => return Ok(None),
        "1" => {
            let m = a.ask_source("model", &models)?;
            one(vec![s("infer"), s("--model"), m])
        }
        "2" | "3" => {
            let m = a.ask_source("model", &models)?;
            let d = a.ask_source("dataset", &datasets)?;
            let o = a.ask("output folder", Some("output"))?;
            let mut args = vec![
                s("finetune"),
                s("--model"),
                m,
                s("--dataset"),
                d,
                s("--output-dir"),
                o,
            ];
            if choice == "3" {
                let port = a.ask("port", Some("8080"))?;
                args.extend([s("--serve"), s("--port"), port]);
            }
            Job { args }
        }
        "4" => {
            let m = a.ask_source("model", &models)?;
            let d = a.ask_source("preference dataset", &datasets)?;
            let o = a.ask("output folder", Some("output-dpo"))?;
            one(vec![
                s("dpo"),
                s("--model"),
                m,
                s("--dataset"),
                d,
                s("--output-dir"),
                o,
            ])
        }
        "5" => {
            let m = a.ask_source("base model", &models)?;
            let ad = a.ask("adapter folder", Some("output"))?;
            let o = a.ask("output folder", Some("merged"))?;
            one(vec![
                s("merge"),
                s("--model"),
                m,
                s("--adapter"),
                ad,
                s("--output"),
                o,
            ])
        }
        "6" => {
            let m = a.ask_source("model", &models)?;
            let task = a.ask(
                "task (perplexity, multiple-choice, exact-match)",
                Some("multiple-choice"),
            )?;
            let d = a.ask_source("dataset", &datasets)?;
            one(vec![
                s("eval"),
                s("--model"),
                m,
                s("--task"),
                task,
                s("--dataset"),
                d,
            ])
        }
        "7" => {
            let m = a.ask_source("model", &models)?;
            let method = a.ask("method (auto, infer, lora, qlora, full)", Some("auto"))?;
            one(vec![
                s("estimate-vram"),
                s("--model"),
                m,
                s("--method"),
                method,
            ])
        }
        "8" => {
            let m = a.ask_source("model", &models)?;
            let port = a.ask("port", Some("8080"))?;
            one(vec![
                s("infer"),
                s("--model"),
                m,
                s("--serve"),
                s("--port"),
                port,
            ])
        }
        "9" => {
            let id = a.ask("hub id (org/name; ms::org/name for ModelScope)", None)?;
            one(vec![s("download"), id])
        }
        _ => unreachable!(),
    };
    Ok(Some(job))
}

/// Run the menu on the terminal.
pub fn run(printer: &Printer) -> Result<()> {
    let stdin = std::io::stdin();
    let mut asker = Asker::new(stdin.lock(), std::io::stderr());
    let Some(job) = ask_job(&mut asker)? else {
        return Ok(());
    };
    let exe = std::env::current_exe().context("finding the swift executable")?;
    printer.info(&format!("running: {}", command_line(&job.args)));
    let status = std::process::Command::new(&exe)
        .args(&job.args)
        .status()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(input: &str) -> (Option<Job>, String) {
        let mut out = Vec::new();
        let j = {
            let mut a = Asker::new(input.as_bytes(), &mut out);
            ask_job(&mut a).unwrap()
        };
        (j, String::from_utf8(out).unwrap())
    }

    #[test]
    fn defaults_and_pipeline() {
        let (j, text) = job("3\nm.gguf\ndata.jsonl\n\n9000\n");
        assert!(text.contains("fine-tune, merge and serve"));
        assert_eq!(
            command_line(&j.unwrap().args),
            "swift finetune --model m.gguf --dataset data.jsonl --output-dir output --serve --port 9000"
        );
        let (j, _) = job("2\nm.gguf\ndata.jsonl\nrun\n");
        assert_eq!(
            command_line(&j.unwrap().args),
            "swift finetune --model m.gguf --dataset data.jsonl --output-dir run"
        );
    }

    #[test]
    fn quit_retry_and_quoting() {
        assert_eq!(job("q\n").0, None);
        let (j, text) = job("x\n7\nmy model\n\n").unwrap_or_else_none();
        assert!(text.contains("choose one of"));
        assert_eq!(
            command_line(&j.args),
            "swift estimate-vram --model 'my model' --method auto"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    trait UnwrapJob {
        fn unwrap_or_else_none(self) -> (Job, String);
    }
    impl UnwrapJob for (Option<Job>, String) {
        fn unwrap_or_else_none(self) -> (Job, String) {
            (self.0.expect("a job"), self.1)
        }
    }

    #[test]
    fn end_of_input_is_an_interruption() {
        let mut out = Vec::new();
        let mut a = Asker::new("".as_bytes(), &mut out);
        let e = ask_job(&mut a).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 130);
    }
}
