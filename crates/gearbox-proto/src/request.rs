//! Packets a client or worker sends to a server.

use bytes::{Bytes, BytesMut};

use crate::args::{parse_u64, split};
use crate::packet::{encode_raw, Magic, PacketType};
use crate::ProtoError;

/// The three Gearman job priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// Runs before every normal and low job.
    High = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Runs after every high and normal job.
    Low = 2,
}

impl Priority {
    /// All priorities, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// Index 0 (high) to 2 (low), for arrays indexed by priority.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A plain job submission: SUBMIT_JOB, SUBMIT_JOB_BG and their HIGH and LOW variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitJob {
    /// Function name.
    pub function: Bytes,
    /// Unique id (empty: none; `-`: the payload is the unique id).
    pub unique: Bytes,
    /// Opaque payload.
    pub data: Bytes,
    /// Job priority.
    pub priority: Priority,
    /// Fire-and-forget when true; otherwise the client stays attached.
    pub background: bool,
}

impl SubmitJob {
    fn packet_type(&self) -> PacketType {
        use PacketType::*;
        match (self.priority, self.background) {
            (Priority::Normal, false) => SUBMIT_JOB,
            (Priority::Normal, true) => SUBMIT_JOB_BG,
            (Priority::High, false) => SUBMIT_JOB_HIGH,
            (Priority::High, true) => SUBMIT_JOB_HIGH_BG,
            (Priority::Low, false) => SUBMIT_JOB_LOW,
            (Priority::Low, true) => SUBMIT_JOB_LOW_BG,
        }
    }
}

/// Everything a client or worker may send to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// CAN_DO.
    CanDo {
        /// Function name.
        function: Bytes,
    },
    /// CANT_DO.
    CantDo {
        /// Function name.
        function: Bytes,
    },
    /// RESET_ABILITIES.
    ResetAbilities,
    /// PRE_SLEEP.
    PreSleep,
    /// SUBMIT_JOB and its priority/background variants.
    Submit(SubmitJob),
    /// SUBMIT_JOB_SCHED: a background job repeated on five cron fields
    /// (minute, hour, day of month, month, day of week).
    SubmitSched {
        /// Function name.
        function: Bytes,
        /// Unique id.
        unique: Bytes,
        /// Minute, hour, day of month, month, day of week (boxed: this rare packet would
        /// otherwise make every request a hundred bytes larger to move around).
        schedule: Box<[Bytes; 5]>,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// SUBMIT_JOB_EPOCH: a background job that must not run before `epoch` (UNIX seconds).
    SubmitEpoch {
        /// Function name.
        function: Bytes,
        /// Unique id.
        unique: Bytes,
        /// UNIX time in seconds.
        epoch: u64,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// SUBMIT_REDUCE_JOB / SUBMIT_REDUCE_JOB_BACKGROUND.
    SubmitReduce {
        /// Function name.
        function: Bytes,
        /// Unique id.
        unique: Bytes,
        /// Reducer function name.
        reducer: Bytes,
        /// Aggregator name (unused by servers).
        aggregator: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
        /// Fire-and-forget when true.
        background: bool,
    },
    /// GRAB_JOB.
    GrabJob,
    /// GRAB_JOB_UNIQ.
    GrabJobUniq,
    /// GRAB_JOB_ALL.
    GrabJobAll,
    /// WORK_STATUS (numerator and denominator are ASCII decimals, passed through).
    WorkStatus {
        /// Job handle.
        handle: Bytes,
        /// Progress numerator, ASCII decimal.
        numerator: Bytes,
        /// Progress denominator, ASCII decimal.
        denominator: Bytes,
    },
    /// WORK_COMPLETE.
    WorkComplete {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_FAIL.
    WorkFail {
        /// Job handle.
        handle: Bytes,
    },
    /// WORK_EXCEPTION.
    WorkException {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_DATA.
    WorkData {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// WORK_WARNING.
    WorkWarning {
        /// Job handle.
        handle: Bytes,
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// GET_STATUS.
    GetStatus {
        /// Job handle.
        handle: Bytes,
    },
    /// GET_STATUS_UNIQUE.
    GetStatusUnique {
        /// Unique id.
        unique: Bytes,
    },
    /// ECHO_REQ.
    EchoReq {
        /// Opaque payload (may contain NULs).
        data: Bytes,
    },
    /// SET_CLIENT_ID.
    SetClientId {
        /// Client id.
        id: Bytes,
    },
    /// CAN_DO_TIMEOUT; see [`Request::timeout_value`] for the two encodings of `timeout`.
    CanDoTimeout {
        /// Function name.
        function: Bytes,
        /// Time limit (see `timeout_value`).
        timeout: Bytes,
    },
    /// ALL_YOURS (never implemented by any server).
    AllYours,
    /// OPTION_REQ.
    OptionReq {
        /// Option name, e.g. `exceptions`.
        option: Bytes,
    },
}

impl Request {
    /// Builds a request from a packet type and its body (zero-copy).
    ///
    /// A response-only type is [`ProtoError::UnexpectedType`].
    pub fn parse(kind: PacketType, body: Bytes) -> Result<Request, ProtoError> {
        use PacketType::*;
        let submit = |priority, background| -> Result<Request, ProtoError> {
            let [function, unique, data] = split::<3>(kind, &body)?;
            Ok(Request::Submit(SubmitJob {
                function,
                unique,
                data,
                priority,
                background,
            }))
        };
        Ok(match kind {
            CAN_DO => Request::CanDo { function: body },
            CANT_DO => Request::CantDo { function: body },
            RESET_ABILITIES => Request::ResetAbilities,
            PRE_SLEEP => Request::PreSleep,
            SUBMIT_JOB => submit(Priority::Normal, false)?,
            SUBMIT_JOB_BG => submit(Priority::Normal, true)?,
            SUBMIT_JOB_HIGH => submit(Priority::High, false)?,
            SUBMIT_JOB_HIGH_BG => submit(Priority::High, true)?,
            SUBMIT_JOB_LOW => submit(Priority::Low, false)?,
            SUBMIT_JOB_LOW_BG => submit(Priority::Low, true)?,
            SUBMIT_JOB_SCHED => {
                let [function, unique, m, h, dom, mon, dow, data] = split::<8>(kind, &body)?;
                Request::SubmitSched {
                    function,
                    unique,
                    schedule: Box::new([m, h, dom, mon, dow]),
                    data,
                }
            }
            SUBMIT_JOB_EPOCH => {
                let [function, unique, epoch, data] = split::<4>(kind, &body)?;
                Request::SubmitEpoch {
                    function,
                    unique,
                    epoch: parse_u64(kind, &epoch)?,
                    data,
                }
            }
            SUBMIT_REDUCE_JOB | SUBMIT_REDUCE_JOB_BACKGROUND => {
                let [function, unique, reducer, aggregator, data] = split::<5>(kind, &body)?;
                Request::SubmitReduce {
                    function,
                    unique,
                    reducer,
                    aggregator,
                    data,
                    background: kind == SUBMIT_REDUCE_JOB_BACKGROUND,
                }
            }
            GRAB_JOB => Request::GrabJob,
            GRAB_JOB_UNIQ => Request::GrabJobUniq,
            GRAB_JOB_ALL => Request::GrabJobAll,
            WORK_STATUS => {
                let [handle, numerator, denominator] = split::<3>(kind, &body)?;
                Request::WorkStatus {
                    handle,
                    numerator,
                    denominator,
                }
            }
            WORK_COMPLETE => {
                let [handle, data] = handle_and_data(&body);
                Request::WorkComplete { handle, data }
            }
            WORK_FAIL => Request::WorkFail { handle: body },
            WORK_EXCEPTION => {
                let [handle, data] = handle_and_data(&body);
                Request::WorkException { handle, data }
            }
            WORK_DATA => {
                let [handle, data] = handle_and_data(&body);
                Request::WorkData { handle, data }
            }
            WORK_WARNING => {
                let [handle, data] = handle_and_data(&body);
                Request::WorkWarning { handle, data }
            }
            GET_STATUS => Request::GetStatus { handle: body },
            GET_STATUS_UNIQUE => Request::GetStatusUnique { unique: body },
            ECHO_REQ => Request::EchoReq { data: body },
            SET_CLIENT_ID => Request::SetClientId { id: body },
            CAN_DO_TIMEOUT => {
                let [function, timeout] = split::<2>(kind, &body)?;
                Request::CanDoTimeout { function, timeout }
            }
            ALL_YOURS => Request::AllYours,
            OPTION_REQ => Request::OptionReq { option: body },
            NOOP | JOB_CREATED | NO_JOB | JOB_ASSIGN | ECHO_RES | ERROR | STATUS_RES
            | OPTION_RES | JOB_ASSIGN_UNIQ | JOB_ASSIGN_ALL | STATUS_RES_UNIQUE => {
                return Err(ProtoError::UnexpectedType(kind))
            }
        })
    }

    /// The packet type this request is sent as.
    pub fn packet_type(&self) -> PacketType {
        use PacketType::*;
        match self {
            Request::CanDo { .. } => CAN_DO,
            Request::CantDo { .. } => CANT_DO,
            Request::ResetAbilities => RESET_ABILITIES,
            Request::PreSleep => PRE_SLEEP,
            Request::Submit(s) => s.packet_type(),
            Request::SubmitSched { .. } => SUBMIT_JOB_SCHED,
            Request::SubmitEpoch { .. } => SUBMIT_JOB_EPOCH,
            Request::SubmitReduce {
                background: false, ..
            } => SUBMIT_REDUCE_JOB,
            Request::SubmitReduce {
                background: true, ..
            } => SUBMIT_REDUCE_JOB_BACKGROUND,
            Request::GrabJob => GRAB_JOB,
            Request::GrabJobUniq => GRAB_JOB_UNIQ,
            Request::GrabJobAll => GRAB_JOB_ALL,
            Request::WorkStatus { .. } => WORK_STATUS,
            Request::WorkComplete { .. } => WORK_COMPLETE,
            Request::WorkFail { .. } => WORK_FAIL,
            Request::WorkException { .. } => WORK_EXCEPTION,
            Request::WorkData { .. } => WORK_DATA,
            Request::WorkWarning { .. } => WORK_WARNING,
            Request::GetStatus { .. } => GET_STATUS,
            Request::GetStatusUnique { .. } => GET_STATUS_UNIQUE,
            Request::EchoReq { .. } => ECHO_REQ,
            Request::SetClientId { .. } => SET_CLIENT_ID,
            Request::CanDoTimeout { .. } => CAN_DO_TIMEOUT,
            Request::AllYours => ALL_YOURS,
            Request::OptionReq { .. } => OPTION_REQ,
        }
    }

    /// Appends the request as a `\0REQ` packet to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let kind = self.packet_type();
        let mut num = itoa_buf();
        let args: &[&[u8]] = match self {
            Request::ResetAbilities
            | Request::PreSleep
            | Request::GrabJob
            | Request::GrabJobUniq
            | Request::GrabJobAll
            | Request::AllYours => &[],
            Request::CanDo { function } | Request::CantDo { function } => &[function],
            Request::Submit(s) => &[&s.function, &s.unique, &s.data],
            Request::SubmitSched {
                function,
                unique,
                schedule,
                data,
            } => {
                let [a, b, c, d, e] = &**schedule;
                &[function, unique, a, b, c, d, e, data]
            }
            Request::SubmitEpoch {
                function,
                unique,
                epoch,
                data,
            } => &[function, unique, fmt_u64(&mut num, *epoch), data],
            Request::SubmitReduce {
                function,
                unique,
                reducer,
                aggregator,
                data,
                ..
            } => &[function, unique, reducer, aggregator, data],
            Request::WorkStatus {
                handle,
                numerator,
                denominator,
            } => &[handle, numerator, denominator],
            Request::WorkComplete { handle, data }
            | Request::WorkException { handle, data }
            | Request::WorkData { handle, data }
            | Request::WorkWarning { handle, data } => &[handle, data],
            Request::WorkFail { handle } | Request::GetStatus { handle } => &[handle],
            Request::GetStatusUnique { unique } => &[unique],
            Request::EchoReq { data } => &[data],
            Request::SetClientId { id } => &[id],
            Request::CanDoTimeout { function, timeout } => &[function, timeout],
            Request::OptionReq { option } => &[option],
        };
        encode_raw(Magic::Req, kind, args, dst);
    }

    /// Reads a CAN_DO_TIMEOUT argument. Two encodings exist in the field: ASCII decimal
    /// (libgearman, Perl, Python and most libraries; the unit is the server's choice, see
    /// [`TimeoutValue`]), and a 4-byte big-endian count of seconds (the Go library
    /// `mikespook/gearman-go`). `None` when the argument is neither.
    pub fn timeout_value(timeout: &[u8]) -> Option<TimeoutValue> {
        let trimmed = timeout.strip_suffix(b"\0").unwrap_or(timeout);
        if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_digit) {
            return std::str::from_utf8(trimmed)
                .ok()?
                .parse()
                .ok()
                .map(TimeoutValue::Decimal);
        }
        let be: [u8; 4] = timeout.try_into().ok()?;
        Some(TimeoutValue::BinarySeconds(u32::from_be_bytes(be)))
    }
}

/// A CAN_DO_TIMEOUT time limit as sent, before a unit is chosen for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutValue {
    /// ASCII decimal. Perl's `Gearman::Worker`, PHP's `GearmanWorker::addFunction` and Python's
    /// `gear` document it as seconds; gearmand 1.1.20 reads milliseconds; the protocol text
    /// and libgearman's own documentation name no unit.
    Decimal(u64),
    /// A 4-byte big-endian number of seconds (the Go library).
    BinarySeconds(u32),
}

/// Splits a WORK_* body into handle and data. A body without the separating NUL is a handle
/// with empty data: Perl's Gearman::Worker sends WORK_COMPLETE that way for a result of `""`
/// or `"0"`, and refusing it would leave the job stuck on the worker.
fn handle_and_data(body: &Bytes) -> [Bytes; 2] {
    match memchr::memchr(0, body) {
        Some(pos) => [body.slice(..pos), body.slice(pos + 1..)],
        None => [body.clone(), Bytes::new()],
    }
}

pub(crate) fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats `v` as ASCII decimal into `buf`, returning the used part (the numbers in
/// packets, and the server's job handles, without `fmt`'s cost).
pub fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}
