#![warn(missing_docs)]
//! # gearbox-client: Gearman clients, workers and admin, for Tokio
//!
//! A client (servers from the list, or `GEARMAN_SERVERS`):
//!
//! ```no_run
//! # async fn f() -> gearbox_client::Result<()> {
//! let client = gearbox_client::Client::new("gear1:4730,gear2")?;
//! let reversed = client.submit("reverse", "hello").await?; // waits for the result
//! let handle = client.job("send_email", "to=bob").low().background().await?;
//! # Ok(()) }
//! ```
//!
//! A worker (four jobs at once, until Ctrl-C, then running jobs get 30 s to finish):
//!
//! ```no_run
//! use gearbox_client::worker::{Job, JobError};
//!
//! # async fn f() -> gearbox_client::Result<()> {
//! let worker = gearbox_client::Worker::builder()
//!     .servers("gear1:4730,gear2")
//!     .concurrency(4)
//!     .register("reverse", |job: Job| async move {
//!         Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
//!     })
//!     .build()?;
//! let stopped = worker.run(tokio::signal::ctrl_c()).await?;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! - [`servers`]: server lists (`host[:port],...`, `GEARMAN_SERVERS`).
//! - [`error`]: [`Error`], the one error type.
//! - [`worker`]: [`Worker`], its builder, [`Job`](worker::Job) and
//!   [`StopReason`](worker::StopReason): serve functions from every server, graceful shutdown.
//! - [`client`]: the async [`Client`]: [`ClientBuilder`], [`JobBuilder`], [`Task`] and
//!   [`TaskEvent`], [`TaskSet`] (scatter/gather), [`JobStatus`], [`UniqueStatus`].
//! - `conn` (private): one multiplexed, pipelined connection per server, opened lazily,
//!   re-opened with back-off; server choice by the hash of the unique id, with failover.
//! - [`admin`]: [`Admin`](admin::Admin), the admin text protocol with typed answers
//!   (status, workers, jobs, maxqueue, cancel, ...), and
//!   [`cluster_status`](admin::cluster_status) over a server list.
//! - [`raw`]: [`RawConnection`](raw::RawConnection), a bare connection with explicit writes
//!   (load generators, protocol probes).
//! - [`tls`]: [`TlsConfig`], TLS for every connection (CA, client certificate, server name);
//!   `transport` (private): the plain-or-TLS stream under every connection.
//! - [`blocking`]: blocking facades with a private runtime; [`blocking::Client`],
//!   [`blocking::worker::Worker`].

pub mod admin;
pub mod blocking;
pub mod client;
mod conn;
pub mod error;
pub mod raw;
pub mod servers;
pub mod tls;
mod transport;
pub mod worker;

pub use client::{
    Client, ClientBuilder, Epoch, JobBuilder, JobStatus, Task, TaskEvent, TaskSet, UniqueStatus,
};
pub use error::{Error, Result};
pub use gearbox_proto::Priority;
pub use servers::{parse_servers, ServerAddr, DEFAULT_PORT};
pub use tls::{TlsConfig, TlsConfigBuilder};
pub use worker::Worker;
