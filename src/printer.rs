//! One value that decides where output goes: data to stdout, talk to stderr,
//! colours and progress bars only where they make sense.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{ColorChoice, GlobalArgs};
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
    /// Colours on stderr.
    pub color: bool,
    /// Progress bars on stderr (a terminal, not quiet, not `--no-progress`).
    pub bars: bool,
}

impl Printer {
    pub fn from_global(g: &GlobalArgs) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Printer {
            quiet: g.quiet,
            verbose: g.verbose,
            color,
            bars: stderr_tty && !g.quiet && !g.no_progress,
        }
    }

    /// A printer for tests: no colour, no bars, not quiet.
    pub fn plain() -> Self {
        Printer {
            quiet: false,
            verbose: 0,
            color: false,
            bars: false,
        }
    }

    /// Data (the command's result) to stdout.
    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// Data written as it comes (streamed tokens): no newline added.
    pub fn data_raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A status line to stderr, unless quiet.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A prompt for the user's input on stderr, unless quiet: no newline,
    /// flushed.
    pub fn prompt(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// Detail shown with `-v`.
    pub fn verbose(&self, level: u8, text: &str) {
        if !self.quiet && self.verbose >= level {
            eprintln!("{text}");
        }
    }

    /// A warning to stderr, unless quiet.
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!("{}", warning_line(text, self.color));
        }
    }

    /// An already rendered error (`error: ...` + causes), always shown.
    pub fn error(&self, text: &str) {
        let text = text.trim_end_matches('\n');
        if self.color {
            if let Some(rest) = text.strip_prefix("error:") {
                eprintln!("\x1b[1;31merror\x1b[0m:{rest}");
                return;
            }
        }
        eprintln!("{text}");
    }

    /// A progress reporter: a bar on a terminal, periodic plain lines when
    /// stderr is not a terminal (unless quiet), nothing when quiet.
    pub fn progress(&self) -> Box<dyn Progress> {
        if self.bars {
            Box::new(BarProgress::new(self.color))
        } else if self.quiet {
            Box::new(crate::progress::NoProgress)
        } else {
            Box::new(LineProgress::new(Duration::from_secs(10), self.color))
        }
    }
}

/// indicatif bar on stderr.
pub struct BarProgress {
    bar: ProgressBar,
    color: bool,
}

impl BarProgress {
    fn new(color: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        BarProgress { bar, color }
    }
}

/// `warning: line`, the label in bold yellow with colours.
fn warning_line(line: &str, color: bool) -> String {
    if color {
        format!("\x1b[1;33mwarning\x1b[0m: {line}")
    } else {
        format!("warning: {line}")
    }
}

impl Progress for BarProgress {
    fn start(&self, label: &str, total: Option<u64>) {
        self.bar.reset();
        match total {
            Some(n) => {
                self.bar.set_length(n);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                );
            }
            None => {
                self.bar.unset_length();
                self.bar.set_style(
                    ProgressStyle::with_template("{prefix:>12} {spinner} {pos} {msg} ({elapsed})")
                        .expect("static template"),
                );
            }
        }
        self.bar.set_prefix(label.to_string());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }
    fn inc(&self, n: u64) {
        self.bar.inc(n);
    }
    fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }
    fn message(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }
    fn println(&self, line: &str) {
        self.bar.println(line);
    }
    fn warn(&self, line: &str) {
        self.bar.println(warning_line(line, self.color));
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Plain lines every `every` when stderr is not a terminal (logs, CI).
pub struct LineProgress {
    every: Duration,
    color: bool,
    state: Mutex<LineState>,
}

struct LineState {
    label: String,
    total: Option<u64>,
    pos: u64,
    msg: String,
    last: Instant,
}

impl LineProgress {
    fn new(every: Duration, color: bool) -> Self {
        LineProgress {
            every,
            color,
            state: Mutex::new(LineState {
                label: String::new(),
                total: None,
                pos: 0,
                msg: String::new(),
                last: Instant::now(),
            }),
        }
    }

    fn maybe_print(&self, st: &mut LineState, force: bool) {
        if force || st.last.elapsed() >= self.every {
            st.last = Instant::now();
            let total = st.total.map(|t| format!("/{t}")).unwrap_or_default();
            eprintln!("{}: {}{} {}", st.label, st.pos, total, st.msg);
        }
    }
}

impl Progress for LineProgress {
    fn start(&self, label: &str, total: Option<u64>) {
        let mut st = self.state.lock().unwrap();
        st.label = label.to_string();
        st.total = total;
        st.pos = 0;
        st.msg.clear();
        st.last = Instant::now();
    }
    fn inc(&self, n: u64) {
        let mut st = self.state.lock().unwrap();
        st.pos += n;
        self.maybe_print(&mut st, false);
    }
    fn set_position(&self, pos: u64) {
        let mut st = self.state.lock().unwrap();
        st.pos = pos;
        self.maybe_print(&mut st, false);
    }
    fn message(&self, msg: &str) {
        self.state.lock().unwrap().msg = msg.to_string();
    }
    fn println(&self, line: &str) {
        eprintln!("{line}");
    }
    fn warn(&self, line: &str) {
        eprintln!("{}", warning_line(line, self.color));
    }
    fn finish(&self) {}
}
