//! Packets a server sends to clients and workers.

use bytes::{Bytes, BytesMut};

use crate::args::{parse_u64, split};
use crate::packet::{encode_raw, encode_raw_head, Magic, PacketType};
use crate::request::{fmt_u64, itoa_buf};
use crate::{ErrorCode, ProtoError};

/// Everything a server may send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// NOOP: wake up, there may be work.
    Noop,
    /// JOB_CREATED.
    JobCreated {
        /// Job handle.
        handle: Bytes,
    },
    /// NO_JOB.
    NoJob,
    /// JOB_ASSIGN.
    JobAssign {
        /// Job handle.
        handle: Bytes,
        /// Function name.
        function: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_STATUS forwarded to a client.
    WorkStatus {
        /// Job handle.
        handle: Bytes,
        /// Progress numerator, ASCII decimal.
        numerator: Bytes,
        /// Progress denominator, ASCII decimal.
        denominator: Bytes,
    },
    /// WORK_COMPLETE forwarded to a client.
    WorkComplete {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_FAIL forwarded to a client.
    WorkFail {
        /// Job handle.
        handle: Bytes,
    },
    /// WORK_EXCEPTION forwarded to a client.
    WorkException {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_DATA forwarded to a client.
    WorkData {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_WARNING forwarded to a client.
    WorkWarning {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// ECHO_RES.
    EchoRes {
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// ERROR with a gearmand error code and a text. Build one with [`Response::error`]; the
    /// code is kept as bytes because a peer may send one [`ErrorCode`] does not list.
    Error {
        /// Error code, e.g. `JOB_NOT_FOUND` (see [`ErrorCode::parse`]).
        code: Bytes,
        /// Human-readable error text.
        text: Bytes,
    },
    /// STATUS_RES.
    StatusRes {
        /// Job handle.
        handle: Bytes,
        /// Whether the server knows the job.
        known: bool,
        /// Whether a worker is running it.
        running: bool,
        /// Progress numerator, ASCII decimal.
        numerator: Bytes,
        /// Progress denominator, ASCII decimal.
        denominator: Bytes,
    },
    /// OPTION_RES.
    OptionRes {
        /// Option name, e.g. `exceptions`.
        option: Bytes,
    },
    /// JOB_ASSIGN_UNIQ.
    JobAssignUniq {
        /// Job handle.
        handle: Bytes,
        /// Function name.
        function: Bytes,
        /// Unique id.
        unique: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// JOB_ASSIGN_ALL.
    JobAssignAll {
        /// Job handle.
        handle: Bytes,
        /// Function name.
        function: Bytes,
        /// Unique id.
        unique: Bytes,
        /// Reducer function name.
        reducer: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// STATUS_RES_UNIQUE.
    StatusResUnique {
        /// Unique id.
        unique: Bytes,
        /// Whether the server knows the job.
        known: bool,
        /// Whether a worker is running it.
        running: bool,
        /// Progress numerator, ASCII decimal.
        numerator: Bytes,
        /// Progress denominator, ASCII decimal.
        denominator: Bytes,
        /// Clients attached to the job.
        client_count: u64,
    },
}

fn flag(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

fn parse_flag(kind: PacketType, arg: &[u8]) -> Result<bool, ProtoError> {
    Ok(parse_u64(kind, arg)? != 0)
}

impl Response {
    /// An ERROR packet with this code and text.
    pub fn error(code: ErrorCode, text: impl Into<Bytes>) -> Response {
        Response::Error {
            code: Bytes::from_static(code.as_bytes()),
            text: text.into(),
        }
    }

    /// Builds a response from a packet type and its body (zero-copy).
    ///
    /// A request-only type is [`ProtoError::UnexpectedType`].
    pub fn parse(kind: PacketType, body: Bytes) -> Result<Response, ProtoError> {
        use PacketType::*;
        Ok(match kind {
            NOOP => Response::Noop,
            JOB_CREATED => Response::JobCreated { handle: body },
            NO_JOB => Response::NoJob,
            JOB_ASSIGN => {
                let [handle, function, data] = split::<3>(kind, &body)?;
                Response::JobAssign {
                    handle,
                    function,
                    data,
                }
            }
            WORK_STATUS => {
                let [handle, numerator, denominator] = split::<3>(kind, &body)?;
                Response::WorkStatus {
                    handle,
                    numerator,
                    denominator,
                }
            }
            WORK_COMPLETE => {
                let [handle, data] = split::<2>(kind, &body)?;
                Response::WorkComplete { handle, data }
            }
            WORK_FAIL => Response::WorkFail { handle: body },
            WORK_EXCEPTION => {
                let [handle, data] = split::<2>(kind, &body)?;
                Response::WorkException { handle, data }
            }
            WORK_DATA => {
                let [handle, data] = split::<2>(kind, &body)?;
                Response::WorkData { handle, data }
            }
            WORK_WARNING => {
                let [handle, data] = split::<2>(kind, &body)?;
                Response::WorkWarning { handle, data }
            }
            ECHO_RES => Response::EchoRes { data: body },
            ERROR => {
                let [code, text] = split::<2>(kind, &body)?;
                Response::Error { code, text }
            }
            STATUS_RES => {
                let [handle, known, running, numerator, denominator] = split::<5>(kind, &body)?;
                Response::StatusRes {
                    handle,
                    known: parse_flag(kind, &known)?,
                    running: parse_flag(kind, &running)?,
                    numerator,
                    denominator,
                }
            }
            OPTION_RES => Response::OptionRes { option: body },
            JOB_ASSIGN_UNIQ => {
                let [handle, function, unique, data] = split::<4>(kind, &body)?;
                Response::JobAssignUniq {
                    handle,
                    function,
                    unique,
                    data,
                }
            }
            JOB_ASSIGN_ALL => {
                let [handle, function, unique, reducer, data] = split::<5>(kind, &body)?;
                Response::JobAssignAll {
                    handle,
                    function,
                    unique,
                    reducer,
                    data,
                }
            }
            STATUS_RES_UNIQUE => {
                let [unique, known, running, numerator, denominator, count] =
                    split::<6>(kind, &body)?;
                Response::StatusResUnique {
                    unique,
                    known: parse_flag(kind, &known)?,
                    running: parse_flag(kind, &running)?,
                    numerator,
                    denominator,
                    client_count: parse_u64(kind, &count)?,
                }
            }
            _ => return Err(ProtoError::UnexpectedType(kind)),
        })
    }

    /// The packet type this response is sent as.
    pub fn packet_type(&self) -> PacketType {
        use PacketType::*;
        match self {
            Response::Noop => NOOP,
            Response::JobCreated { .. } => JOB_CREATED,
            Response::NoJob => NO_JOB,
            Response::JobAssign { .. } => JOB_ASSIGN,
            Response::WorkStatus { .. } => WORK_STATUS,
            Response::WorkComplete { .. } => WORK_COMPLETE,
            Response::WorkFail { .. } => WORK_FAIL,
            Response::WorkException { .. } => WORK_EXCEPTION,
            Response::WorkData { .. } => WORK_DATA,
            Response::WorkWarning { .. } => WORK_WARNING,
            Response::EchoRes { .. } => ECHO_RES,
            Response::Error { .. } => ERROR,
            Response::StatusRes { .. } => STATUS_RES,
            Response::OptionRes { .. } => OPTION_RES,
            Response::JobAssignUniq { .. } => JOB_ASSIGN_UNIQ,
            Response::JobAssignAll { .. } => JOB_ASSIGN_ALL,
            Response::StatusResUnique { .. } => STATUS_RES_UNIQUE,
        }
    }

    /// The opaque payload this packet ends with (WORK_COMPLETE, WORK_DATA, WORK_WARNING,
    /// WORK_EXCEPTION, JOB_ASSIGN*, ECHO_RES), if it has one.
    pub fn trailing_data(&self) -> Option<&Bytes> {
        match self {
            Response::JobAssign { data, .. }
            | Response::WorkComplete { data, .. }
            | Response::WorkException { data, .. }
            | Response::WorkData { data, .. }
            | Response::WorkWarning { data, .. }
            | Response::EchoRes { data }
            | Response::JobAssignUniq { data, .. }
            | Response::JobAssignAll { data, .. } => Some(data),
            _ => None,
        }
    }

    /// Appends the response as a `\0RES` packet to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.encode_split(dst, usize::MAX);
    }

    /// Like [`encode`](Self::encode), except that a trailing payload of at least `min` bytes
    /// is not copied: `dst` gets the packet up to the payload and the payload is returned, to
    /// be sent right after (a vectored write), so large payloads cross the server uncopied.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use gearbox_proto::Response;
    /// let r = Response::WorkComplete { handle: Bytes::from_static(b"H:x:1"), data: Bytes::from(vec![7; 100]) };
    /// let (mut whole, mut head) = (BytesMut::new(), BytesMut::new());
    /// r.encode(&mut whole);
    /// let tail = r.encode_head(&mut head, 64).expect("a large payload is split off");
    /// head.extend_from_slice(&tail);
    /// assert_eq!(whole, head);
    /// ```
    pub fn encode_head(&self, dst: &mut BytesMut, min: usize) -> Option<Bytes> {
        if self.encode_split(dst, min) {
            self.trailing_data().cloned()
        } else {
            None
        }
    }

    /// Encodes, leaving out a trailing payload of `split_at` bytes or more; returns whether it
    /// did.
    fn encode_split(&self, dst: &mut BytesMut, split_at: usize) -> bool {
        let kind = self.packet_type();
        let mut num = itoa_buf();
        let args: &[&[u8]] = match self {
            Response::Noop | Response::NoJob => &[],
            Response::JobCreated { handle } | Response::WorkFail { handle } => &[handle],
            Response::JobAssign {
                handle,
                function,
                data,
            } => &[handle, function, data],
            Response::WorkStatus {
                handle,
                numerator,
                denominator,
            } => &[handle, numerator, denominator],
            Response::WorkComplete { handle, data }
            | Response::WorkException { handle, data }
            | Response::WorkData { handle, data }
            | Response::WorkWarning { handle, data } => &[handle, data],
            Response::EchoRes { data } => &[data],
            Response::Error { code, text } => &[code, text],
            Response::StatusRes {
                handle,
                known,
                running,
                numerator,
                denominator,
            } => &[handle, flag(*known), flag(*running), numerator, denominator],
            Response::OptionRes { option } => &[option],
            Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            } => &[handle, function, unique, data],
            Response::JobAssignAll {
                handle,
                function,
                unique,
                reducer,
                data,
            } => &[handle, function, unique, reducer, data],
            Response::StatusResUnique {
                unique,
                known,
                running,
                numerator,
                denominator,
                client_count,
            } => &[
                unique,
                flag(*known),
                flag(*running),
                numerator,
                denominator,
                fmt_u64(&mut num, *client_count),
            ],
        };
        match args.split_last() {
            Some((last, head)) if last.len() >= split_at && self.trailing_data().is_some() => {
                encode_raw_head(Magic::Res, kind, head, last.len(), dst);
                true
            }
            _ => {
                encode_raw(Magic::Res, kind, args, dst);
                false
            }
        }
    }
}
