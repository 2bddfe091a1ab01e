//! Blocking facades for scripts and programs without an async runtime. Each keeps a small
//! private Tokio runtime; do not call them from inside an async runtime (use the async API
//! there).
//!
//! - [`admin`]: [`Admin`], one server's admin commands, and `cluster_status`.
//! - [`client`]: [`Client`] (also at `blocking::Client`), submit jobs and ask for their status.
//! - [`worker`]: [`worker::Worker`], serve functions with plain `Fn(&Job)` handlers run on
//!   blocking threads, until a signal or a message on a channel.

pub mod admin;
pub mod client;
pub mod worker;

pub use admin::Admin;
pub use client::Client;
