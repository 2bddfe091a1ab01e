//! # gearbox-client: Gearman clients, workers and admin, for Tokio
//!
//! ## Layout
//!
//! - [`servers`]: server lists (`host[:port],...`, `GEARMAN_SERVERS`).
//! - [`error`]: [`Error`], the one error type.

pub mod error;
pub mod servers;

pub use error::{Error, Result};
pub use servers::{parse_servers, ServerAddr, DEFAULT_PORT};
