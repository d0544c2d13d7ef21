//! The shared device / memory planner: what is this machine, how much memory
//! does a job need, and which method, dtype and batch make it fit.

pub mod chunks;
pub mod device;
pub mod memory;
pub mod plan;
pub mod source;
