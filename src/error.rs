//! Exit codes that scripts and Makefiles rely on, and the one place errors are
//! printed.
//!
//! 0 success · 1 error · 2 usage error · 3 does not fit the memory budget ·
//! 130 interrupted.

use std::fmt;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DOES_NOT_FIT: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that carries its own exit code. Library code returns it inside an
/// `anyhow::Error`; `main` finds it with `downcast_ref` anywhere in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The command ran and its answer is "no" (estimate-vram: does not fit).
    /// Nothing is printed as an error: the command already printed its result.
    DoesNotFit,
    /// Bad usage found after parsing (conflicting flags, a bad value).
    Usage(String),
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::DoesNotFit => write!(f, "does not fit the memory budget"),
            Exit::Usage(msg) => write!(f, "{msg}"),
            Exit::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error: the code of the first [`Exit`] in its chain, 1
/// otherwise.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return match exit {
                Exit::DoesNotFit => EXIT_DOES_NOT_FIT,
                Exit::Usage(_) => EXIT_USAGE,
                Exit::Interrupted => EXIT_INTERRUPTED,
            };
        }
    }
    EXIT_ERROR
}

/// Render an error the way cargo does: `error: <top>` then one `Caused by:`
/// block listing every cause. Returns `None` when nothing should be printed.
pub fn render_error(err: &anyhow::Error) -> Option<String> {
    if matches!(err.downcast_ref::<Exit>(), Some(Exit::DoesNotFit)) {
        return None;
    }
    let mut out = format!("error: {err}\n");
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        out.push_str("\nCaused by:\n");
        for cause in causes {
            for (i, line) in cause.lines().enumerate() {
                if i == 0 {
                    out.push_str(&format!("  {line}\n"));
                } else {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_code_found_through_context() {
        let err = anyhow::Error::new(Exit::DoesNotFit).context("estimate");
        assert_eq!(exit_code_for(&err), EXIT_DOES_NOT_FIT);
        let err = anyhow::anyhow!("plain");
        assert_eq!(exit_code_for(&err), EXIT_ERROR);
        let err: anyhow::Error = Err::<(), _>(Exit::Interrupted)
            .context("training")
            .unwrap_err();
        assert_eq!(exit_code_for(&err), EXIT_INTERRUPTED);
    }

    #[test]
    fn render_lists_causes() {
        let err: anyhow::Error = Err::<(), _>(std::io::Error::other("disk full"))
            .context("writing out/model.safetensors")
            .unwrap_err();
        let text = render_error(&err).unwrap();
        assert_eq!(
            text,
            "error: writing out/model.safetensors\n\nCaused by:\n  disk full\n"
        );
    }
}
