#![warn(missing_docs)]
//! # gearbox-server: the job server library
//!
//! ## Layout
//!
//! - [`core`]: the state machine (functions, priority queues, jobs, workers, timers, admin
//!   replies). No I/O: events in, [`core::Effect`]s out. Connections, jobs and moments are
//!   types of their own: [`core::ConnId`], [`core::JobId`], [`core::UnixMillis`].
//! - [`access`]: the `[[access]]` rules ([`access::AccessPolicy`]) and the grants
//!   ([`access::Grants`]) a connection gets from them at connect.
//! - [`config`]: [`Config`], every setting with its default.
//! - [`net`]: the Tokio side: [`run`] accepts connections, decodes packets, feeds the core
//!   behind one `std::sync::Mutex`, and writes each connection's output with one send per
//!   round.
//! - [`outbound`]: a connection's bounded output queue, shared with the core's dispatch,
//!   written by the task that produced the output or, when the socket is full, its writer.
//! - [`outbuf`]: the bytes of such a queue; large payloads are queued by reference and sent
//!   with vectored writes.
//! - [`metrics`]: [`metrics::ServerMetrics`], the server-wide counters kept outside the
//!   core's lock (connections, bytes, ERROR packets, store commits and outages), and the
//!   Prometheus text writer the `metrics` admin command renders with.
//! - [`tls`]: TLS on the Gearman port: [`Listener`] (plain or TLS), [`ServerTls`] (the
//!   reloadable rustls configuration and handshake timeout), loading PEM files, and the
//!   identity a client certificate proves.
//! - [`persister`]: the task that group-commits store writes and reports back to the core.
//! - [`error`]: the error type, [`ServerError`].
//!
//! The server runs on the runtime it is given and stops when the shutdown future passed to
//! [`run`] resolves (or an admin `shutdown` arrives from loopback).

pub mod access;
pub mod config;
pub mod core;
pub mod error;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod outbuf;
pub mod persister;
pub mod tls;

pub use config::Config;
pub use error::ServerError;
pub use net::{run, run_with_store, ShutdownMode};
pub use tls::{Listener, ServerTls};
