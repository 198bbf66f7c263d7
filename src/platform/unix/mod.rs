//! Unix (Linux) implementations of the platform interface (see `platform`).

pub mod bind;
pub mod fs;
pub mod nofile;
pub mod paths;
pub mod readiness;
pub mod stop;
pub mod wake;
