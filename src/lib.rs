//! swift: a git-style toolkit that takes a large language model through its
//! whole life on one machine. `main.rs` only calls [`run`]; everything else is
//! a library that tests call directly.

pub mod cli;
pub mod commands;
pub mod data;
pub mod error;
pub mod eval;
pub mod hub;
pub mod model;
pub mod planner;
pub mod printer;
pub mod progress;
pub mod serve;
pub mod tokenizer;
pub mod train;

pub use error::{exit_code_for, Exit};

/// Parse the command line, run the command, print errors, return the exit code.
pub fn run() -> i32 {
    cli::main_with_args(std::env::args_os())
}
