//! `swift infer`: generate from the terminal (one prompt, stdin, or an
//! interactive chat). The generation loop lives in `model::generate`; this
//! file turns flags into its parameters and prints.

use std::io::{BufRead, IsTerminal, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::serving::{load, Loaded};
use crate::error::Exit;
use crate::model::generate::{generate_with_model, Completion, Finish, GenerateParams, Sequence};
use crate::model::sampling::{
    self, read_generation_config, SamplingBasis, SamplingFields, SamplingParams,
};
use crate::model::KvCache;
use crate::printer::Printer;
use crate::tokenizer::{Message, Tokenizer};

#[derive(Debug, Args)]
#[command(after_help = "\
Input: --prompt TEXT, or text piped on stdin; with neither and a terminal on stdin, an \
interactive chat with history. In the chat, end a line with a backslash to continue on the \
next line, or wrap a block in lines holding only \"\"\"; /clear forgets the history, /exit \
(or Ctrl-D) quits.

Sampling: the chat (and the server, for requests that set none) samples; a one-shot prompt \
(--prompt or stdin) decodes greedily, the same text every run, unless --temperature above 0, \
--top-k, --top-p, --min-p or --seed asks for sampling. The values come from the flags, then the \
model's generation_config.json, then the defaults of Ollama: temperature 0.8, top-k 40, top-p \
0.9, repetition penalty 1.1. --temperature 0 is plain greedy decoding, whatever the defaults. \
The chat's first line shows the sampling in effect; its answers stop at 1024 new tokens unless \
--max-new-tokens says otherwise.

Tokens stream to stdout as they come; loading messages and speed go to stderr.")]
pub struct InferArgs {
    /// A model folder (config.json + safetensors + tokenizer), a .gguf file, or
    /// a hub id (`org/name`, `hf::org/name`, `ms::org/name`) fetched first
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH"
    )]
    pub model: String,

    /// A PEFT LoRA adapter folder, DIR or NAME=DIR, applied without merging
    /// (repeatable); with --serve each is served as model NAME (default: the
    /// folder name) beside the base model
    #[arg(long = "adapter", alias = "adapters", value_name = "DIR")]
    pub adapters: Vec<PathBuf>,

    /// The prompt (otherwise read from stdin when it is not a terminal)
    #[arg(long, short = 'p')]
    pub prompt: Option<String>,

    /// A system message for the chat template
    #[arg(long)]
    pub system: Option<String>,

    /// Feed the prompt as is, without the chat template
    #[arg(long)]
    pub raw: bool,

    /// Use a built-in chat template instead of the model's (chatml, llama3, mistral, qwen, ...)
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,

    /// Most tokens to generate (default: 1024 per chat answer; a one-shot prompt
    /// runs until the end of the context window)
    #[arg(long, alias = "max_new_tokens", value_name = "N")]
    pub max_new_tokens: Option<usize>,

    /// Sampling temperature; 0 = greedy. Default: the model's
    /// generation_config.json, else 0.8 in the chat and greedy for a one-shot prompt
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,

    /// Sample only among the K most likely tokens (0 = off; default: generation_config.json, else 40)
    #[arg(long, alias = "top_k", value_name = "K")]
    pub top_k: Option<usize>,

    /// Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else 0.9)
    #[arg(long, alias = "top_p", value_name = "P")]
    pub top_p: Option<f32>,

    /// Drop tokens less likely than P times the most likely one (0 = off)
    #[arg(long, alias = "min_p", value_name = "P")]
    pub min_p: Option<f32>,

    /// Penalise the tokens already in the context, as transformers does (1 = off; default:
    /// generation_config.json, else 1.1 when sampling)
    #[arg(long, alias = "repetition_penalty", value_name = "X")]
    pub repetition_penalty: Option<f32>,

    /// Seed of the sampler: the same seed gives the same text (default: a random one)
    #[arg(long)]
    pub seed: Option<u64>,

    /// Stop when the text contains this string (repeatable; the string is not printed)
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,

    /// Do not stop at end-of-sequence tokens (for benchmarks)
    #[arg(long, alias = "ignore_eos")]
    pub ignore_eos: bool,

    /// CPU threads for the model (default: all cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,

    /// Print one JSON object (text, finish_reason, token counts, speed) instead of streaming
    #[arg(long)]
    pub json: bool,

    /// Serve an OpenAI-compatible HTTP API (/v1/chat/completions,
    /// /v1/completions, /v1/models, /health) until SIGINT / SIGTERM
    #[arg(long, help_heading = "Server")]
    pub serve: bool,

    /// Address to listen on (loopback unless told otherwise)
    #[arg(long, default_value = "127.0.0.1", help_heading = "Server")]
    pub host: String,

    /// Port to listen on; 0 picks a free one (the address is printed)
    #[arg(long, default_value_t = 8080, help_heading = "Server")]
    pub port: u16,

    /// Require `Authorization: Bearer KEY` on /v1/*
    #[arg(
        long,
        env = "SWIFT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Server"
    )]
    pub api_key: Option<String>,

    /// The id of the base model in /v1/models and requests (default: --model as given)
    #[arg(long, value_name = "NAME", help_heading = "Server")]
    pub served_model_name: Option<String>,

    /// Most sequences decoded together in one batch
    #[arg(long, default_value_t = 16, value_name = "N", help_heading = "Server")]
    pub max_batch: usize,

    /// Most requests waiting for a place in the batch; more are answered 429
    #[arg(long, default_value_t = 64, value_name = "N", help_heading = "Server")]
    pub queue_size: usize,

    /// Largest request body in bytes; larger ones are answered 413
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES", help_heading = "Server")]
    pub max_body_bytes: usize,

    /// Seconds in-flight requests may run after SIGINT / SIGTERM before they are cancelled
    #[arg(long, default_value_t = 10, value_name = "S", help_heading = "Server")]
    pub shutdown_grace: u64,
}

/// The folders of `--adapter` values.
fn adapter_dirs(adapters: &[PathBuf]) -> Vec<PathBuf> {
    adapters.iter().map(|a| adapter_spec(a).1).collect()
}

/// An `--adapter` value: `DIR` or `NAME=DIR` (a path that exists wins).
pub fn adapter_spec(arg: &Path) -> (Option<String>, PathBuf) {
    let s = arg.to_string_lossy();
    if !arg.exists() {
        if let Some((name, dir)) = s.split_once('=') {
            if !name.is_empty() && !dir.is_empty() {
                return (Some(name.to_string()), PathBuf::from(dir));
            }
        }
    }
    (None, arg.to_path_buf())
}

/// One message typed in the interactive chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatInput {
    Message(String),
    Clear,
    Exit,
    Help,
    /// An unknown `/command`.
    Unknown(String),
}

/// Read one chat input from `input`: a line; a line ending in `\` continues
/// on the next; a line holding only `"""` opens a block closed by another.
/// `prompt(continuation)` is called before each line is read. End of input
/// is [`ChatInput::Exit`]. Empty lines are skipped.
pub fn read_chat_input(
    input: &mut dyn BufRead,
    prompt: &mut dyn FnMut(bool),
) -> std::io::Result<ChatInput> {
    loop {
        prompt(false);
        let Some(first) = read_line(input)? else {
            return Ok(ChatInput::Exit);
        };
        let trimmed = first.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed == "\"\"\"" {
            let mut lines = Vec::new();
            loop {
                prompt(true);
                match read_line(input)? {
                    None => break,
                    Some(l) if l.trim() == "\"\"\"" => break,
                    Some(l) => lines.push(l),
                }
            }
            return Ok(ChatInput::Message(lines.join("\n")));
        }
        if let Some(cmd) = trimmed.strip_prefix('/') {
            if !cmd.is_empty() && !cmd.contains(char::is_whitespace) {
                return Ok(match cmd {
                    "exit" | "quit" | "q" => ChatInput::Exit,
                    "clear" | "reset" => ChatInput::Clear,
                    "help" | "?" => ChatInput::Help,
                    other => ChatInput::Unknown(other.to_string()),
                });
            }
        }
        let mut lines = Vec::new();
        let mut line = first;
        while let Some(stripped) = line.strip_suffix('\\') {
            lines.push(stripped.to_string());
            prompt(true);
            match read_line(input)? {
                Some(next) => line = next,
                None => {
                    line = String::new();
                    break;
                }
            }
        }
        lines.push(line);
        return Ok(ChatInput::Message(lines.join("\n")));
    }
}

/// One line without its line ending; `None` at end of input.
fn read_line(input: &mut dyn BufRead) -> std::io::Result<Option<String>> {
    let mut s = String::new();
    if input.read_line(&mut s)? == 0 {
        return Ok(None);
    }
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    Ok(Some(s))
}

impl InferArgs {
    /// The sampling values set on the command line.
    pub fn sampling_fields(&self) -> SamplingFields {
        SamplingFields {
            do_sample: None,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
        }
    }
}

/// The sampling in effect from the flags and the model's
/// `generation_config.json` (see [`sampling::resolve`]): the interactive
/// chat samples by default, one-shot prompts (`--prompt`, stdin) decode
/// greedily unless a flag asks for sampling.
pub fn sampling_params(
    args: &InferArgs,
    model: &SamplingFields,
    chat: bool,
) -> (SamplingParams, SamplingBasis) {
    sampling::resolve(&args.sampling_fields(), model, chat)
}

/// Most new tokens of one chat answer unless `--max-new-tokens` says:
/// longer than nearly every chat answer (about 750 words), short enough
/// that a model that loops stops on its own in seconds to minutes on a CPU.
pub const CHAT_MAX_NEW_TOKENS: usize = 1024;

/// The chat's first line: the sampling in effect, where it comes from
/// (`flags`: some sampling flag was given) and the length bound.
pub fn sampling_line(
    p: &SamplingParams,
    basis: SamplingBasis,
    flags: bool,
    max_new: Option<usize>,
) -> String {
    let max = match max_new {
        Some(n) => format!("max {n} new tokens"),
        None => "no length limit but the context window".to_string(),
    };
    let flags = if flags && basis != SamplingBasis::AskedGreedy {
        "the flags, then "
    } else {
        ""
    };
    format!(
        "sampling: {} ({flags}{}), {max}",
        p.describe(),
        basis.describe()
    )
}

/// Set while tokens are being generated: Ctrl-C then stops the answer
/// instead of the program.
static GENERATING: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn install_ctrlc(printer: &Printer) {
    let printer = printer.clone();
    let _ = ctrlc::set_handler(move || {
        if GENERATING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        } else {
            // Waiting for input (or loading): leave like an ordinary Ctrl-C
            // (ending the prompt's line).
            printer.info("");
            std::process::exit(crate::error::EXIT_INTERRUPTED);
        }
    });
}

/// The prompt's token ids: the chat template around `messages`, or (raw) the
/// text as the tokenizer encodes it.
fn prompt_ids(tok: &Tokenizer, raw: bool, messages: &[Message], text: &str) -> Result<Vec<u32>> {
    if raw {
        return tok.encode(text, true);
    }
    let rendered = tok.apply_chat_template(messages, true).map_err(|e| {
        e.context("rendering the chat template (pass --template NAME, or --raw to skip it)")
    })?;
    tok.encode(&rendered, false)
}

/// The JSON answer of `--json`.
fn json_answer(model: &str, c: &Completion) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "text": c.text,
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
        "prefill_seconds": round3(c.prefill_seconds),
        "decode_seconds": round3(c.decode_seconds),
        "prefill_tokens_per_s": round3(c.prefill_tokens_per_s()),
        "decode_tokens_per_s": round3(c.decode_tokens_per_s()),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn speed_line(c: &Completion) -> String {
    let reused = if c.prefill_tokens < c.prompt_tokens {
        format!(" ({} new)", c.prefill_tokens)
    } else {
        String::new()
    };
    format!(
        "prompt: {} tokens{reused}, {:.1} tok/s · generated: {} tokens, {:.1} tok/s · finish: {}",
        c.prompt_tokens,
        c.prefill_tokens_per_s(),
        c.completion_tokens,
        c.decode_tokens_per_s(),
        c.finish_reason
    )
}

pub fn run(args: InferArgs, printer: &Printer) -> Result<()> {
    if args.serve {
        return run_serve(args, printer);
    }
    let stdin_is_tty = std::io::stdin().is_terminal();
    let prompt = match &args.prompt {
        Some(p) => Some(p.clone()),
        None if !stdin_is_tty => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the prompt from stdin")?;
            let s = s.strip_suffix('\n').unwrap_or(&s);
            let s = s.strip_suffix('\r').unwrap_or(s);
            if s.trim().is_empty() {
                return Err(Exit::Usage(
                    "no prompt: pass --prompt TEXT, pipe text on stdin, or run in a terminal for a chat"
                        .into(),
                )
                .into());
            }
            Some(s.to_string())
        }
        None => None,
    };
    if prompt.is_none() && args.json {
        return Err(Exit::Usage("--json needs a prompt (--prompt TEXT or stdin)".into()).into());
    }
    // A hub id is fetched (weights, configs, tokenizer, template) first.
    let resolved = super::resolve_model_arg(
        Path::new(&args.model),
        &["*.json", "*.safetensors", "*.jinja", "tokenizer.model"],
    )?;
    let mut args = args;
    args.model = resolved.to_string_lossy().into_owned();
    let loaded = load(
        Path::new(&args.model),
        &adapter_dirs(&args.adapters),
        args.template.as_deref(),
        printer,
    )?;
    let gen = read_generation_config(Path::new(&args.model))?;
    let chat = prompt.is_none();
    let (sampling, basis) = sampling_params(&args, &gen, chat);
    let params = GenerateParams {
        max_new_tokens: args.max_new_tokens.or(if chat {
            Some(CHAT_MAX_NEW_TOKENS)
        } else {
            None
        }),
        sampling,
        stop: args.stop.clone(),
        ignore_eos: args.ignore_eos,
        logprobs: None,
    };
    if let Err(e) = params.sampling.validate() {
        return Err(Exit::Usage(e).into());
    }
    let flags = !args.sampling_fields().is_empty();
    let line = sampling_line(&params.sampling, basis, flags, params.max_new_tokens);
    install_ctrlc(printer);
    match prompt {
        Some(p) => {
            printer.verbose(1, &line);
            run_once(&args, printer, &loaded, &params, &p)
        }
        None => {
            printer.info(&line);
            run_chat(&args, printer, &loaded, &params)
        }
    }
}

/// `--serve`: load the base model once, each adapter as an alias over the
/// same weights, and hand them to the server.
fn run_serve(args: InferArgs, printer: &Printer) -> Result<()> {
    if args.prompt.is_some() || args.json {
        return Err(Exit::Usage("--serve takes no --prompt / --json".into()).into());
    }
    if args.max_batch == 0 || args.queue_size == 0 {
        return Err(Exit::Usage("--max-batch and --queue-size must be at least 1".into()).into());
    }
    let base_name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| args.model.clone());
    let resolved = super::resolve_model_arg(
        Path::new(&args.model),
        &["*.json", "*.safetensors", "*.jinja", "tokenizer.model"],
    )?;
    let adapter_args = args.adapters.clone();
    let mut base_args = InferArgs {
        adapters: Vec::new(),
        ..args
    };
    base_args.model = resolved.to_string_lossy().into_owned();
    let args = base_args;
    let adapters: Vec<(Option<String>, PathBuf)> =
        adapter_args.iter().map(|a| adapter_spec(a)).collect();
    for (_, dir) in &adapters {
        if !dir.is_dir() {
            bail!("adapter folder not found: {}", dir.display());
        }
    }
    let loaded = load(
        Path::new(&args.model),
        &[],
        args.template.as_deref(),
        printer,
    )?;
    let gen = read_generation_config(Path::new(&args.model))?;
    // What a request that sets no sampling field gets.
    let (sampling, basis) = sampling_params(&args, &gen, true);
    if let Err(e) = sampling.validate() {
        return Err(Exit::Usage(e).into());
    }
    let base = std::sync::Arc::new(loaded.model);
    let mut models = vec![crate::serve::ServedModel {
        name: base_name.clone(),
        model: base.clone(),
        parent: None,
    }];
    for (name, dir) in adapters {
        let name = name.unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.to_string_lossy().into_owned())
        });
        if models.iter().any(|m| m.name == name) {
            return Err(Exit::Usage(format!("two served models are named {name}")).into());
        }
        let mut m = (*base).clone();
        crate::model::adapter::apply(&mut m, &dir)
            .with_context(|| format!("applying the adapter {}", dir.display()))?;
        printer.info(&format!("adapter {name}: {}", dir.display()));
        models.push(crate::serve::ServedModel {
            name,
            model: std::sync::Arc::new(m),
            parent: Some(base_name.clone()),
        });
    }
    let opts = crate::serve::ServeOptions {
        host: args.host.clone(),
        port: args.port,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        max_batch: args.max_batch,
        queue: args.queue_size,
        body_limit: args.max_body_bytes,
        sampling_flags: args.sampling_fields(),
        model_sampling: gen,
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
        ..Default::default()
    };
    super::serving::serve(models, loaded.tokenizer, opts, &sampling, basis, printer)
}

fn run_once(
    args: &InferArgs,
    printer: &Printer,
    l: &Loaded,
    params: &GenerateParams,
    prompt: &str,
) -> Result<()> {
    let mut messages = Vec::new();
    if let Some(sys) = &args.system {
        messages.push(Message::system(sys.clone()));
    }
    messages.push(Message::user(prompt));
    let ids = prompt_ids(&l.tokenizer, args.raw, &messages, prompt)?;
    let mut seq = Sequence::new(&l.tokenizer, ids, params, l.context_len)?;
    let mut cache = KvCache::new(&l.model, 1);
    GENERATING.store(true, Ordering::SeqCst);
    let stream = !args.json;
    let done = generate_with_model(&l.model, &mut cache, &mut seq, |t| {
        if stream && !t.text.is_empty() {
            printer.data_raw(&t.text);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    GENERATING.store(false, Ordering::SeqCst);
    let done = done?;
    if args.json {
        printer.data(&serde_json::to_string(&json_answer(&args.model, &done))?);
    } else {
        printer.data_raw("\n");
    }
    printer.info(&speed_line(&done));
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Exit::Interrupted.into());
    }
    Ok(())
}

const CHAT_HELP: &str = "Type a message and press Enter. End a line with \\ to go on to the next, \
or put \"\"\" on a line of its own before and after a block. /clear forgets the conversation, \
/exit (or Ctrl-D) quits; Ctrl-C stops an answer.";

fn run_chat(
    args: &InferArgs,
    printer: &Printer,
    l: &Loaded,
    params: &GenerateParams,
) -> Result<()> {
    printer.info(CHAT_HELP);
    let mut history: Vec<Message> = Vec::new();
    let base: Vec<Message> = args
        .system
        .iter()
        .map(|s| Message::system(s.clone()))
        .collect();
    let mut cache = KvCache::new(&l.model, 1);
    // The tokens the cache holds, to reuse the common prefix across turns.
    let mut cached: Vec<u32> = Vec::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let msg = read_chat_input(&mut input, &mut |cont| {
            printer.prompt(if cont { "... " } else { ">>> " });
        })
        .context("reading from the terminal")?;
        let text = match msg {
            ChatInput::Exit => return Ok(()),
            ChatInput::Clear => {
                history.clear();
                printer.info("(conversation cleared)");
                continue;
            }
            ChatInput::Help => {
                printer.info(CHAT_HELP);
                continue;
            }
            ChatInput::Unknown(cmd) => {
                printer.info(&format!("unknown command /{cmd}; /help lists them"));
                continue;
            }
            ChatInput::Message(m) => m,
        };
        let mut messages = base.clone();
        if !args.raw {
            messages.extend(history.iter().cloned());
        }
        messages.push(Message::user(text.clone()));
        let ids = prompt_ids(&l.tokenizer, args.raw, &messages, &text)?;
        let mut seq = match Sequence::new(&l.tokenizer, ids, params, l.context_len) {
            Ok(s) => s,
            Err(e) => {
                printer.error(&format!("error: {e:#}\n(/clear starts a new conversation)"));
                continue;
            }
        };
        let common = cached
            .iter()
            .zip(seq.tokens())
            .take_while(|(a, b)| a == b)
            .count();
        seq.skip_cached(common);
        cache.truncate(seq.fed());
        INTERRUPTED.store(false, Ordering::SeqCst);
        GENERATING.store(true, Ordering::SeqCst);
        let done = generate_with_model(&l.model, &mut cache, &mut seq, |t| {
            if !t.text.is_empty() {
                printer.data_raw(&t.text);
            }
            if INTERRUPTED.load(Ordering::SeqCst) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        GENERATING.store(false, Ordering::SeqCst);
        let done = done?;
        printer.data_raw("\n");
        printer.verbose(1, &speed_line(&done));
        match done.finish {
            Finish::MaxTokens => printer.info(&format!(
                "(the answer stopped at {} new tokens; --max-new-tokens N allows more)",
                done.completion_tokens
            )),
            Finish::ContextFull => {
                printer.info("(the context window is full; /clear starts a new conversation)")
            }
            _ => {}
        }
        cached = seq.tokens()[..seq.fed()].to_vec();
        if !args.raw {
            history.push(Message::user(text));
            history.push(Message::assistant(done.text.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(text: &str) -> Vec<ChatInput> {
        let mut r = std::io::Cursor::new(text.as_bytes().to_vec());
        let mut out = Vec::new();
        loop {
            let i = read_chat_input(&mut r, &mut |_| {}).unwrap();
            let end = i == ChatInput::Exit;
            out.push(i);
            if end {
                return out;
            }
        }
    }

    fn args(extra: &[&str]) -> InferArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: InferArgs,
        }
        let mut v = vec!["t", "--model", "m.gguf"];
        v.extend_from_slice(extra);
        T::parse_from(v).a
    }

    #[test]
    fn serve_defaults_match_the_command_line() {
        // `swift finetune --serve` serves with ServeOptions' defaults: they
        // must be what `swift infer --serve` does without flags.
        let a = args(&["--serve"]);
        let d = crate::serve::ServeOptions::default();
        assert_eq!(
            (&a.host, a.port, a.max_batch, a.queue_size, a.max_body_bytes),
            (&d.host, d.port, d.max_batch, d.queue, d.body_limit)
        );
        assert_eq!(
            std::time::Duration::from_secs(a.shutdown_grace),
            d.shutdown_grace
        );
        assert!(a.sampling_fields() == SamplingFields::default());
    }

    #[test]
    fn sampling_defaults() {
        use crate::model::sampling::BUILTIN_DEFAULTS;
        let none = SamplingFields::default();
        // No flags, no config: the chat samples with the built-in defaults,
        // a one-shot prompt decodes greedily.
        let (p, basis) = sampling_params(&args(&[]), &none, true);
        assert_eq!(p, BUILTIN_DEFAULTS);
        assert_eq!(
            (p.temperature, p.top_k, p.top_p, p.repetition_penalty),
            (0.8, 40, 0.9, 1.1)
        );
        assert_eq!(
            basis,
            SamplingBasis::BuiltIn {
                with_model_values: false
            }
        );
        let (p, basis) = sampling_params(&args(&[]), &none, false);
        assert_eq!(p, SamplingParams::greedy());
        assert_eq!(basis, SamplingBasis::GreedyByDefault);
        // --temperature 0 is plain greedy in the chat too: no built-in
        // repetition penalty.
        let (p, basis) = sampling_params(&args(&["--temperature", "0"]), &none, true);
        assert_eq!(p, SamplingParams::greedy());
        assert_eq!(basis, SamplingBasis::AskedGreedy);
        // A sampling flag alone turns a one-shot to the built-in defaults,
        // the flags over them.
        let (p, _) = sampling_params(&args(&["--top-p", "0.5", "--seed", "4"]), &none, false);
        assert_eq!(
            (p.temperature, p.top_k, p.top_p, p.seed),
            (0.8, 40, 0.5, Some(4))
        );
        // A repetition penalty alone does not: greedy with that penalty.
        let (p, _) = sampling_params(&args(&["--repetition-penalty", "1.3"]), &none, false);
        assert!(p.is_greedy());
        assert_eq!(p.repetition_penalty, 1.3);
        // The config asks for sampling: its values, transformers' defaults
        // for the rest (top-k 50), in the chat and in one-shots alike.
        let gen = SamplingFields {
            do_sample: Some(true),
            temperature: Some(0.6),
            top_p: Some(0.95),
            repetition_penalty: Some(1.05),
            ..Default::default()
        };
        for chat in [true, false] {
            let (p, basis) = sampling_params(&args(&[]), &gen, chat);
            assert_eq!(
                (p.temperature, p.top_k, p.top_p, p.repetition_penalty),
                (0.6, 50, 0.95, 1.05)
            );
            assert_eq!(basis, SamplingBasis::ModelSamples);
        }
        // Flags win; --temperature 0 is greedy whatever the config says, with
        // the config's repetition penalty as before.
        let (p, _) = sampling_params(&args(&["--temperature", "0", "--top_k", "5"]), &gen, true);
        assert!(p.is_greedy());
        assert_eq!((p.top_k, p.repetition_penalty), (5, 1.05));
        // do_sample false: greedy, even in the chat; the config's
        // temperature is not used.
        let gen = SamplingFields {
            do_sample: Some(false),
            temperature: Some(0.6),
            ..Default::default()
        };
        let (p, basis) = sampling_params(&args(&[]), &gen, true);
        assert_eq!((p.temperature, basis), (0.0, SamplingBasis::ModelGreedy));
        // A config without do_sample (only ids, like SmolLM2's): the
        // built-in defaults under the values it sets.
        let gen = SamplingFields {
            top_p: Some(0.8),
            ..Default::default()
        };
        let (p, basis) = sampling_params(&args(&[]), &gen, true);
        assert_eq!((p.temperature, p.top_k, p.top_p), (0.8, 40, 0.8));
        assert_eq!(
            basis,
            SamplingBasis::BuiltIn {
                with_model_values: true
            }
        );
    }

    #[test]
    fn the_chat_line_says_the_sampling_in_effect() {
        let none = SamplingFields::default();
        let (p, basis) = sampling_params(&args(&[]), &none, true);
        assert_eq!(
            sampling_line(&p, basis, false, Some(CHAT_MAX_NEW_TOKENS)),
            "sampling: temperature 0.8, top-k 40, top-p 0.9, repetition penalty 1.1 \
             (defaults: the model ships no generation_config), max 1024 new tokens"
        );
        let (p, basis) = sampling_params(&args(&["--temperature", "0"]), &none, true);
        assert_eq!(
            sampling_line(&p, basis, true, None),
            "sampling: greedy (temperature 0 asked for), no length limit but the context window"
        );
        let (p, basis) = sampling_params(&args(&["--seed", "7", "--top-k", "0"]), &none, true);
        assert_eq!(
            sampling_line(&p, basis, true, Some(5)),
            "sampling: temperature 0.8, top-p 0.9, repetition penalty 1.1, seed 7 \
             (the flags, then defaults: the model ships no generation_config), max 5 new tokens"
        );
    }

    #[test]
    fn generation_config_is_read_from_a_folder() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            read_generation_config(d.path()).unwrap(),
            SamplingFields::default()
        );
        std::fs::write(
            d.path().join("generation_config.json"),
            r#"{"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "eos_token_id": [1, 2]}"#,
        )
        .unwrap();
        let g = read_generation_config(d.path()).unwrap();
        assert_eq!(g.do_sample, Some(true));
        assert_eq!(g.top_k, Some(20));
        assert_eq!(g.temperature, Some(0.7));
        std::fs::write(d.path().join("generation_config.json"), "{oops").unwrap();
        let e = read_generation_config(d.path()).unwrap_err();
        assert!(format!("{e:#}").contains("generation_config.json"));
    }

    #[test]
    fn chat_input_lines_commands_and_blocks() {
        use ChatInput::*;
        let got = inputs("hello\n\n/clear\nfirst \\\nsecond\n\"\"\"\na\n\nb\n\"\"\"\n/nope\n/help\nbye\r\n/exit\nafter\n");
        assert_eq!(
            got,
            vec![
                Message("hello".into()),
                Clear,
                Message("first \nsecond".into()),
                Message("a\n\nb".into()),
                Unknown("nope".into()),
                Help,
                Message("bye".into()),
                Exit,
            ]
        );
        // A path-like message is not a command; end of input is exit.
        assert_eq!(
            inputs("/usr/bin is a dir\n"),
            vec![Message("/usr/bin is a dir".into()), Exit]
        );
        assert_eq!(
            inputs("\"\"\"\nunterminated"),
            vec![Message("unterminated".into()), Exit]
        );
    }
}
