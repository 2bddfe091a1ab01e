//! Refusing what a connection's access rule does not grant (see [`crate::access`]): a submit
//! to a function it may not submit to, a CAN_DO for a function it may not register for, an
//! admin command above its level. The refusal is an ERROR packet (an `ERR` line for admin
//! commands), one warning in the log and one count in `gearbox_access_denied_total`; the
//! connection stays as it was.

use bytes::Bytes;
use gearbox_proto::{AdminCommand, ErrorCode, Request};

use super::ids::ConnId;
use super::log::Lossy;
use super::{Core, Outbox};
use crate::metrics::Denied;

impl Core {
    /// Whether `conn` may send `req`; if not, the refusal is sent, logged and counted.
    pub(super) fn permits(&mut self, conn: ConnId, req: &Request, out: &mut Outbox) -> bool {
        let (what, function, extra) = match req {
            Request::Submit(s) => (Denied::Submit, &s.function, None),
            Request::SubmitEpoch { function, .. } | Request::SubmitSched { function, .. } => {
                (Denied::Submit, function, None)
            }
            // The reducer runs as a job of its own function: both must be allowed.
            Request::SubmitReduce {
                function, reducer, ..
            } => (Denied::Submit, function, Some(reducer)),
            Request::CanDo { function } | Request::CanDoTimeout { function, .. } => {
                (Denied::Register, function, None)
            }
            _ => return true,
        };
        let grants = &self.conn(conn).grants;
        let allowed = |f: &[u8]| match what {
            Denied::Register => grants.may_register(f),
            _ => grants.may_submit(f),
        };
        let refused = [Some(function), extra]
            .into_iter()
            .flatten()
            .find(|f| !allowed(f));
        let Some(function) = refused.cloned() else {
            return true;
        };
        self.log_denied(conn, what, &Lossy(&function).to_string());
        let verb = match what {
            Denied::Register => "register for",
            _ => "submit to",
        };
        let mut text = format!("permission denied: may not {verb} ").into_bytes();
        text.extend_from_slice(&function);
        out.error(conn, ErrorCode::PermissionDenied, Bytes::from(text));
        false
    }

    /// The `ERR` line refusing `cmd`, if `conn`'s rule does not allow it.
    pub(super) fn admin_refused(&mut self, conn: ConnId, cmd: &AdminCommand) -> Option<Bytes> {
        let c = self.conns.get(&conn)?;
        let needed = cmd.access();
        if c.grants.may_admin(needed) {
            return None;
        }
        let name = cmd.name();
        self.log_denied(conn, Denied::Admin, &name);
        // gearmand's ERR lines have no spaces in their text: `+` stands for each.
        let level = match needed {
            gearbox_proto::AdminAccess::Write => "write",
            _ => "read",
        };
        let text =
            format!("permission denied: {name} needs admin {level} access").replace(' ', "+");
        Some(Bytes::from(format!(
            "ERR {} {text}\r\n",
            ErrorCode::PermissionDenied.as_str()
        )))
    }

    fn log_denied(&self, conn: ConnId, what: Denied, target: &str) {
        let c = self.conn(conn);
        tracing::warn!(
            conn = conn.get(),
            peer = %c.info.peer_ip,
            identity = ?c.info.identity,
            rule = c.grants.rule(),
            what = what.name(),
            target,
            "request refused by the access rules"
        );
        self.server_metrics.denied(what);
    }
}
