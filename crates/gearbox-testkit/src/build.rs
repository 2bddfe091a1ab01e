//! Short constructors for requests and responses, shared by the test suites, so a test step
//! reads as one line: `bg("f", "u", "data")`, `Work::Data("part").request(&handle)`.

use bytes::{Bytes, BytesMut};
use gearbox_proto::{Priority, Request, Response, SubmitJob, HEADER_LEN};

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A SUBMIT_JOB request (any priority, foreground or background).
pub fn submit(
    function: &str,
    unique: &str,
    data: &str,
    priority: Priority,
    background: bool,
) -> Request {
    Request::Submit(SubmitJob {
        function: b(function),
        unique: b(unique),
        data: b(data),
        priority,
        background,
    })
}

/// SUBMIT_JOB: foreground, normal priority.
pub fn fg(function: &str, unique: &str, data: &str) -> Request {
    submit(function, unique, data, Priority::Normal, false)
}

/// SUBMIT_JOB_BG: background, normal priority.
pub fn bg(function: &str, unique: &str, data: &str) -> Request {
    submit(function, unique, data, Priority::Normal, true)
}

/// A packet header: magic, type number and body length, for tests that send raw bytes.
pub fn raw_header(magic: &[u8; 4], kind: u32, len: u32) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// A whole packet as raw bytes: any magic, any type number (valid or not), any body.
pub fn raw_packet(magic: &[u8; 4], kind: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("a test body under 4 GiB");
    let mut v = raw_header(magic, kind, len);
    v.extend_from_slice(body);
    v
}

/// CAN_DO `function`.
pub fn can_do(function: &str) -> Request {
    Request::CanDo {
        function: b(function),
    }
}

/// GET_STATUS of `handle`.
pub fn get_status(handle: &Bytes) -> Request {
    Request::GetStatus {
        handle: handle.clone(),
    }
}

/// GET_STATUS_UNIQUE of `unique`.
pub fn get_status_unique(unique: &str) -> Request {
    Request::GetStatusUnique { unique: b(unique) }
}

/// OPTION_REQ `option`.
pub fn option(option: &str) -> Request {
    Request::OptionReq { option: b(option) }
}

/// A job's progress as GET_STATUS and GET_STATUS_UNIQUE report it: known, running,
/// numerator, denominator.
pub type Progress<'a> = (bool, bool, &'a str, &'a str);

/// STATUS_RES: what GET_STATUS answers for `handle`.
pub fn status_res(handle: &Bytes, progress: Progress<'_>) -> Response {
    let (known, running, n, d) = progress;
    Response::StatusRes {
        handle: handle.clone(),
        known,
        running,
        numerator: b(n),
        denominator: b(d),
    }
}

/// STATUS_RES_UNIQUE: what GET_STATUS_UNIQUE answers for `unique`.
pub fn status_res_unique(unique: &str, progress: Progress<'_>, clients: u64) -> Response {
    let (known, running, n, d) = progress;
    Response::StatusResUnique {
        unique: b(unique),
        known,
        running,
        numerator: b(n),
        denominator: b(d),
        client_count: clients,
    }
}

/// One WORK_* packet about a job: the same fields whether a worker sends it (as a
/// [`Request`]) or the server forwards it to the job's clients (as a [`Response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work<'a> {
    /// WORK_STATUS with numerator and denominator.
    Status(&'a str, &'a str),
    /// WORK_DATA.
    Data(&'a str),
    /// WORK_WARNING.
    Warning(&'a str),
    /// WORK_COMPLETE with the result.
    Complete(&'a str),
    /// WORK_FAIL.
    Fail,
    /// WORK_EXCEPTION with the exception's text.
    Exception(&'a str),
}

impl Work<'_> {
    /// The packet as the worker sends it about `handle`.
    pub fn request(self, handle: &Bytes) -> Request {
        let handle = handle.clone();
        match self {
            Work::Status(n, d) => Request::WorkStatus {
                handle,
                numerator: b(n),
                denominator: b(d),
            },
            Work::Data(d) => Request::WorkData { handle, data: b(d) },
            Work::Warning(d) => Request::WorkWarning { handle, data: b(d) },
            Work::Complete(d) => Request::WorkComplete { handle, data: b(d) },
            Work::Fail => Request::WorkFail { handle },
            Work::Exception(d) => Request::WorkException { handle, data: b(d) },
        }
    }

    /// The packet as the server forwards it to the clients of `handle`: the worker's packet
    /// with the response magic, the same type and the same arguments.
    pub fn response(self, handle: &Bytes) -> Response {
        let req = self.request(handle);
        let mut wire = BytesMut::new();
        req.encode(&mut wire);
        let body = wire.freeze().slice(HEADER_LEN..);
        Response::parse(req.packet_type(), body).expect("a WORK_* packet is also a response")
    }

    /// Each of `work` as the server forwards it to the clients of `handle`.
    pub fn responses(work: &[Work<'_>], handle: &Bytes) -> Vec<Response> {
        work.iter().map(|w| w.response(handle)).collect()
    }
}
