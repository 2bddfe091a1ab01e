#![warn(missing_docs)]
//! # gearbox-proto: the Gearman wire protocol
//!
//! Pure protocol code: no runtime, no sockets, no server or client logic.
//!
//! ## Layout
//!
//! - [`packet`]: [`PacketType`] (every type 1-42), magic codes, raw packet encoding.
//! - [`request`]: [`Request`], everything a client or worker sends, with [`SubmitJob`] and
//!   [`Priority`].
//! - [`response`]: [`Response`], everything a server sends.
//! - [`admin`]: the admin text protocol's command parser, [`AdminCommand`].
//! - [`codec`]: tokio-util codecs, [`ServerCodec`] and [`ClientCodec`], with their [`Limits`].
//! - [`error`]: [`ProtoError`], with the gearmand error code for each case.
//! - [`error_code`]: [`ErrorCode`], the codes of `ERROR` packets and admin `ERR` replies.
//! - [`handle`]: job handles `<prefix>:<n>`, [`format_handle`] and [`parse_handle`].
//!
//! Arguments are NUL-separated; the last argument of each packet type is the opaque tail and
//! may contain NULs. All payloads are zero-copy [`bytes::Bytes`] slices of the read buffer.

pub mod admin;
mod args;
pub mod codec;
pub mod error;
pub mod error_code;
pub mod handle;
pub mod packet;
pub mod request;
pub mod response;

pub use admin::{parse_admin_line, AdminAccess, AdminCommand};
pub use codec::{ClientCodec, Incoming, Limits, ServerCodec};
pub use error::ProtoError;
pub use error_code::ErrorCode;
pub use handle::{format_handle, parse_handle};
pub use packet::{Magic, PacketType, HEADER_LEN};
pub use request::{fmt_u64, Priority, Request, SubmitJob, TimeoutValue};
pub use response::Response;
