//! Learning-rate schedules, as transformers' `get_scheduler` defines them:
//! a linear warm-up from 0, then cosine / linear decay to 0, or constant.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Linear,
    Constant,
}

impl Schedule {
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Cosine => "cosine",
            Schedule::Linear => "linear",
            Schedule::Constant => "constant",
        }
    }
}

/// The learning rate used by optimizer step `step` (0-based) of `total`.
pub fn lr_at(base: f64, schedule: Schedule, step: usize, warmup: usize, total: usize) -> f64 {
    let (s, w, t) = (step as f64, warmup as f64, total as f64);
    if step < warmup {
        return base * s / w.max(1.0);
    }
    let factor = match schedule {
        Schedule::Constant => 1.0,
        Schedule::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
        Schedule::Cosine => {
            let progress = (s - w) / (t - w).max(1.0);
            (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
        }
    };
    base * factor
}

/// Warm-up steps: explicit steps win, else `ceil(ratio * total)` (transformers).
pub fn warmup_steps(steps: Option<usize>, ratio: f64, total: usize) -> usize {
    match steps {
        Some(s) => s,
        None => (ratio * total as f64).ceil() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_transformers() {
        // warm-up 2 of 10 at 1.0: 0, 0.5, then decay.
        assert_eq!(lr_at(1.0, Schedule::Cosine, 0, 2, 10), 0.0);
        assert_eq!(lr_at(1.0, Schedule::Cosine, 1, 2, 10), 0.5);
        assert!((lr_at(1.0, Schedule::Cosine, 2, 2, 10) - 1.0).abs() < 1e-12);
        assert!((lr_at(1.0, Schedule::Cosine, 6, 2, 10) - 0.5).abs() < 1e-12);
        assert!((lr_at(1.0, Schedule::Linear, 6, 2, 10) - 0.5).abs() < 1e-12);
        assert_eq!(lr_at(1.0, Schedule::Constant, 9, 2, 10), 1.0);
        assert_eq!(lr_at(2.0, Schedule::Linear, 10, 0, 10), 0.0);
        assert_eq!(warmup_steps(None, 0.05, 30), 2);
        assert_eq!(warmup_steps(Some(0), 0.05, 30), 0);
    }
}
