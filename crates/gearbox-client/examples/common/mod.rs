//! Shared by the examples: where the servers are, and a worker running in the background.
#![allow(dead_code)] // Each example uses part of it.

use gearbox_client::worker::StopReason;
use gearbox_client::Worker;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The server list from the first argument, `GEARMAN_SERVERS`, or `127.0.0.1:4730`.
pub fn servers_from_args() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("GEARMAN_SERVERS").ok())
        .unwrap_or_else(|| "127.0.0.1:4730".into())
}

/// A worker running on its own task until [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<gearbox_client::Result<StopReason>>,
}

/// Starts `worker` in the background.
pub fn spawn(worker: Worker) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    Running {
        stop,
        task: tokio::spawn(worker.run(stopped)),
    }
}

impl Running {
    /// Stops the worker gracefully and waits for it.
    pub async fn stop(self) -> gearbox_client::Result<StopReason> {
        let _ = self.stop.send(());
        self.task.await.expect("worker task panicked")
    }
}
