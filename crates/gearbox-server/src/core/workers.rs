//! Workers registering and sleeping: CAN_DO, CAN_DO_TIMEOUT, CANT_DO and PRE_SLEEP.

use bytes::Bytes;
use gearbox_proto::{ErrorCode, Response};

use super::ids::ConnId;
use super::{jobs, state, Core, Outbox};

impl Core {
    pub(super) fn can_do(
        &mut self,
        conn: ConnId,
        function: Bytes,
        timeout_ms: Option<u64>,
        out: &mut Outbox,
    ) {
        if function.len() > self.config.max_function {
            out.error(conn, ErrorCode::ArgumentTooLarge, "function name too long");
            return;
        }
        if jobs::has_control(&function) {
            out.error(conn, ErrorCode::InvalidArguments, jobs::CONTROL_IN_NAME);
            return;
        }
        let function = self.functions.intern(&function);
        let c = self.conn_mut(conn);
        if let Some(a) = c.abilities.iter_mut().find(|a| a.function == function) {
            a.timeout_ms = timeout_ms;
            return;
        }
        self.functions[function].workers.push(conn);
        self.conn_mut(conn).abilities.push(state::Ability {
            function,
            timeout_ms,
        });
        self.cluster_touch(function, out);
    }

    pub(super) fn cant_do(&mut self, conn: ConnId, function: &[u8], out: &mut Outbox) {
        let Some(function) = self.functions.id(function) else {
            return;
        };
        let c = self.conn_mut(conn);
        c.abilities.retain(|a| a.function != function);
        self.functions[function].workers.retain(|w| *w != conn);
        self.cluster_touch(function, out);
    }

    pub(super) fn pre_sleep(&mut self, conn: ConnId, out: &mut Outbox) {
        let has_work = self
            .conn(conn)
            .abilities
            .iter()
            .any(|a| self.functions[a.function].queued() > 0);
        if has_work {
            self.conn_mut(conn).sleeping = false;
            out.send(conn, Response::Noop);
        } else {
            self.conn_mut(conn).sleeping = true;
        }
        if !std::mem::replace(&mut self.conn_mut(conn).wants_work, true) {
            self.cluster_touch_conn(conn, out);
        }
    }
}
