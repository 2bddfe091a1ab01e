//! Packet types, magic codes and the raw framing helpers shared by requests and responses.

use bytes::{BufMut, BytesMut};

/// Length of a binary packet header: magic (4) + type (4) + body length (4).
pub const HEADER_LEN: usize = 12;

/// Magic for packets sent to the server.
pub const MAGIC_REQ: [u8; 4] = *b"\0REQ";
/// Magic for packets sent by the server.
pub const MAGIC_RES: [u8; 4] = *b"\0RES";

/// Which side sent a packet, as told by its magic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Magic {
    /// `\0REQ`: sent to the server.
    Req,
    /// `\0RES`: sent by the server.
    Res,
}

impl Magic {
    /// The four magic bytes.
    pub fn bytes(self) -> [u8; 4] {
        match self {
            Magic::Req => MAGIC_REQ,
            Magic::Res => MAGIC_RES,
        }
    }

    /// Parses four magic bytes; `None` when they are neither `\0REQ` nor `\0RES`.
    pub fn from_bytes(b: [u8; 4]) -> Option<Magic> {
        match b {
            MAGIC_REQ => Some(Magic::Req),
            MAGIC_RES => Some(Magic::Res),
            _ => None,
        }
    }
}

macro_rules! packet_types {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $argc:literal, $req:literal, $res:literal; )*) => {
        /// Every Gearman packet type, numbered as on the wire and named as in the protocol text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        #[allow(non_camel_case_types)]
        pub enum PacketType {
            $( $(#[$doc])* $name = $num, )*
        }

        impl PacketType {
            /// Every packet type, in wire-number order.
            pub const ALL: &'static [PacketType] = &[$(PacketType::$name,)*];

            /// How many NUL-separated arguments the body holds (the last one takes the rest).
            pub fn arg_count(self) -> usize {
                match self { $(PacketType::$name => $argc,)* }
            }

            /// Whether a client or worker may send this type to a server.
            pub fn is_request(self) -> bool {
                match self { $(PacketType::$name => $req,)* }
            }

            /// Whether a server may send this type.
            pub fn is_response(self) -> bool {
                match self { $(PacketType::$name => $res,)* }
            }

            /// The protocol's name for the type, e.g. `SUBMIT_JOB_BG`.
            pub fn name(self) -> &'static str {
                match self { $(PacketType::$name => stringify!($name),)* }
            }
        }

        impl TryFrom<u32> for PacketType {
            type Error = u32;
            fn try_from(v: u32) -> Result<Self, u32> {
                match v {
                    $($num => Ok(PacketType::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

packet_types! {
    /// Worker announces a function it can run.
    CAN_DO = 1, 1, true, false;
    /// Worker withdraws a function.
    CANT_DO = 2, 1, true, false;
    /// Worker withdraws every function.
    RESET_ABILITIES = 3, 0, true, false;
    /// Worker is about to sleep until woken by NOOP.
    PRE_SLEEP = 4, 0, true, false;
    /// Server wakes a sleeping worker.
    NOOP = 6, 0, false, true;
    /// Foreground job at normal priority.
    SUBMIT_JOB = 7, 3, true, false;
    /// Server acknowledges a submitted job with its handle.
    JOB_CREATED = 8, 1, false, true;
    /// Worker asks for a job.
    GRAB_JOB = 9, 0, true, false;
    /// No job for the worker.
    NO_JOB = 10, 0, false, true;
    /// A job for the worker.
    JOB_ASSIGN = 11, 3, false, true;
    /// Progress of a job.
    WORK_STATUS = 12, 3, true, true;
    /// A job's final result.
    WORK_COMPLETE = 13, 2, true, true;
    /// A job failed.
    WORK_FAIL = 14, 1, true, true;
    /// Client asks for the status of a handle.
    GET_STATUS = 15, 1, true, false;
    /// Echo request.
    ECHO_REQ = 16, 1, true, false;
    /// Echo response.
    ECHO_RES = 17, 1, false, true;
    /// Background job at normal priority.
    SUBMIT_JOB_BG = 18, 3, true, false;
    /// An error from the server.
    ERROR = 19, 2, false, true;
    /// Answer to GET_STATUS.
    STATUS_RES = 20, 5, false, true;
    /// Foreground job at high priority.
    SUBMIT_JOB_HIGH = 21, 3, true, false;
    /// Sets the connection's client id.
    SET_CLIENT_ID = 22, 1, true, false;
    /// Worker announces a function with a time limit.
    CAN_DO_TIMEOUT = 23, 2, true, false;
    /// Never implemented anywhere.
    ALL_YOURS = 24, 0, true, false;
    /// A job ended with an exception.
    WORK_EXCEPTION = 25, 2, true, true;
    /// Sets a connection option.
    OPTION_REQ = 26, 1, true, false;
    /// Confirms a connection option.
    OPTION_RES = 27, 1, false, true;
    /// A chunk of partial result data.
    WORK_DATA = 28, 2, true, true;
    /// A warning from the worker.
    WORK_WARNING = 29, 2, true, true;
    /// Worker asks for a job and wants its unique id.
    GRAB_JOB_UNIQ = 30, 0, true, false;
    /// A job with its unique id.
    JOB_ASSIGN_UNIQ = 31, 4, false, true;
    /// Background job at high priority.
    SUBMIT_JOB_HIGH_BG = 32, 3, true, false;
    /// Foreground job at low priority.
    SUBMIT_JOB_LOW = 33, 3, true, false;
    /// Background job at low priority.
    SUBMIT_JOB_LOW_BG = 34, 3, true, false;
    /// Background job repeated on a cron schedule.
    SUBMIT_JOB_SCHED = 35, 8, true, false;
    /// Background job that runs at a UNIX time.
    SUBMIT_JOB_EPOCH = 36, 4, true, false;
    /// Foreground map/reduce job.
    SUBMIT_REDUCE_JOB = 37, 5, true, false;
    /// Background map/reduce job.
    SUBMIT_REDUCE_JOB_BACKGROUND = 38, 5, true, false;
    /// Worker asks for a job with every attribute.
    GRAB_JOB_ALL = 39, 0, true, false;
    /// A job with unique id and reducer.
    JOB_ASSIGN_ALL = 40, 5, false, true;
    /// Client asks for the status of a unique id.
    GET_STATUS_UNIQUE = 41, 1, true, false;
    /// Answer to GET_STATUS_UNIQUE.
    STATUS_RES_UNIQUE = 42, 6, false, true;
}

/// Writes a packet whose last argument (`tail_len` bytes) the caller sends separately: the
/// header counts it, and `head` is written with a NUL after each argument.
pub fn encode_raw_head(
    magic: Magic,
    kind: PacketType,
    head: &[&[u8]],
    tail_len: usize,
    dst: &mut BytesMut,
) {
    let body_len: usize = head.iter().map(|a| a.len() + 1).sum::<usize>() + tail_len;
    dst.reserve(HEADER_LEN + body_len - tail_len);
    dst.put_slice(&magic.bytes());
    dst.put_u32(kind as u32);
    dst.put_u32(u32::try_from(body_len).unwrap_or(u32::MAX));
    for a in head {
        dst.put_slice(a);
        dst.put_u8(0);
    }
}

/// Appends one binary packet (header and NUL-joined arguments) to `dst`.
///
/// Every argument but the last must be free of NUL bytes; the last is the opaque tail.
pub fn encode_raw(magic: Magic, kind: PacketType, args: &[&[u8]], dst: &mut BytesMut) {
    let body_len: usize =
        args.iter().map(|a| a.len()).sum::<usize>() + args.len().saturating_sub(1);
    dst.reserve(HEADER_LEN + body_len);
    dst.put_slice(&magic.bytes());
    dst.put_u32(kind as u32);
    dst.put_u32(u32::try_from(body_len).unwrap_or(u32::MAX));
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            dst.put_u8(0);
        }
        dst.put_slice(a);
    }
}
