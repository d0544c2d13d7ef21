//! Evaluation tasks and metrics (issue 08).
