//! One file per command: turn the command's `Args` into a library call and
//! print the result. No computation lives here.

pub mod completions;
pub mod download;
pub mod estimate_vram;
pub mod infer;
