//! The clap tree: global flags, one `Args` struct per command (defined beside
//! the command in `commands/`), and the dispatcher. Flags are kebab-case; the
//! snake_case spellings ms-swift users type are accepted as hidden aliases.

use std::ffi::OsString;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::error::{exit_code_for, render_error, EXIT_ERROR, EXIT_OK};
use crate::printer::Printer;

#[derive(Debug, Parser)]
#[command(
    name = "swift",
    version,
    about = "Take a large language model through its whole life on one machine",
    long_about = "Take a large language model through its whole life on one machine: \
download it, check that it fits, fine-tune it (LoRA, QLoRA, full), align it with \
preference data, merge the adapter, evaluate it, and serve it behind an \
OpenAI-compatible API.",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error, 3 does not fit the memory budget, 130 interrupted.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Without a command: a menu on a terminal, the help (exit 2) otherwise.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more (repeat for more detail)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is respected under `auto`)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Do not draw progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch a model or dataset from the Hugging Face Hub or ModelScope
    Download(commands::download::DownloadArgs),
    /// Predict the peak memory of a job and decide whether it fits
    #[command(name = "estimate-vram", visible_alias = "estimate")]
    EstimateVram(commands::estimate_vram::EstimateVramArgs),
    /// Generate from the terminal, or serve an OpenAI-compatible API
    Infer(commands::infer::InferArgs),
    /// Supervised fine-tuning: LoRA, QLoRA on a GGUF, or full
    Finetune(commands::finetune::FinetuneArgs),
    /// Preference alignment: DPO, IPO, ORPO, SimPO, KTO (LoRA or full)
    Dpo(commands::dpo::DpoArgs),
    /// Fold LoRA adapters into a base model, or convert between HF and GGUF
    #[command(visible_alias = "export")]
    Merge(commands::merge::MergeArgs),
    /// Measure a model: perplexity, multiple-choice accuracy, exact match
    Eval(commands::eval::EvalArgs),
    /// Print a shell completion script
    Completions(commands::completions::CompletionsArgs),
}

/// Parse `args` and run. Returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to
            // stderr (exit 2).
            let _ = err.print();
            return err.exit_code();
        }
    };
    let printer = Printer::from_global(&cli.global);
    match dispatch(cli, &printer) {
        Ok(()) => EXIT_OK,
        Err(err) => {
            let code = exit_code_for(&err);
            if let Some(text) = render_error(&err) {
                printer.error(&text);
            }
            if code == EXIT_OK {
                EXIT_ERROR
            } else {
                code
            }
        }
    }
}

fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            return commands::menu::run(printer);
        }
        let help = Cli::command().render_help();
        eprintln!("{help}");
        return Err(crate::Exit::Usage(
            "no command given (run `swift` on a terminal for a menu, or `swift help`)".into(),
        )
        .into());
    };
    // Threads are set up once, here, before any exists.
    let (threads, training) = match &command {
        Command::Infer(a) => (a.threads, false),
        Command::Eval(a) => (a.threads, false),
        Command::Finetune(a) => (a.run.threads, true),
        Command::Dpo(a) => (a.run.threads, true),
        _ => (None, false),
    };
    commands::init_threads(threads, training)?;
    match command {
        Command::Download(args) => commands::download::run(args, printer),
        Command::EstimateVram(args) => commands::estimate_vram::run(args, printer),
        Command::Infer(args) => commands::infer::run(args, printer),
        Command::Finetune(args) => commands::finetune::run(args, printer),
        Command::Dpo(args) => commands::dpo::run(args, printer),
        Command::Merge(args) => commands::merge::run(args, printer),
        Command::Eval(args) => commands::eval::run(args, printer),
        Command::Completions(args) => commands::completions::run(args, printer),
    }
}

/// The clap command, for completions, man pages and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Every generated file committed under `completions/` and `man/`, as
/// (path relative to the repository root, contents). `just gen` writes them;
/// a test fails when the committed copies differ.
pub fn generated_files() -> Vec<(String, Vec<u8>)> {
    use crate::commands::completions::{generate, Shell};
    let mut files = Vec::new();
    for shell in Shell::ALL {
        files.push((
            format!("completions/{}", shell.file_name()),
            generate(shell),
        ));
    }
    let mut cmd = command();
    cmd.build();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("rendering to memory cannot fail");
    files.push(("man/swift.1".to_string(), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let name = format!("swift-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .display_name(name.clone())
            .bin_name(format!("swift {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut buf)
            .expect("rendering to memory cannot fail");
        files.push((format!("man/{name}.1"), buf));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
