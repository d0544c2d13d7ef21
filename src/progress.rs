//! Progress reporting. Library code reports through [`Progress`]; only the
//! command layer draws (with indicatif, see `printer`). Tests and quiet runs
//! pass [`NoProgress`].

/// A sink for progress of one long task (a download, an epoch, a scan).
pub trait Progress: Send + Sync {
    /// Start (or restart) a phase: a short label and the total units if known.
    fn start(&self, _label: &str, _total: Option<u64>) {}
    /// Advance by `n` units.
    fn inc(&self, _n: u64) {}
    /// Set the absolute position.
    fn set_position(&self, _pos: u64) {}
    /// A short status shown beside the bar (loss, speed).
    fn message(&self, _msg: &str) {}
    /// A line of text that must be shown even when bars are not (for example
    /// periodic training lines when stderr is not a terminal).
    fn println(&self, _line: &str) {}
    /// A warning line (shown as `warning: ...`), unless quiet.
    fn warn(&self, line: &str) {
        self.println(&format!("warning: {line}"));
    }
    /// The phase is over.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
