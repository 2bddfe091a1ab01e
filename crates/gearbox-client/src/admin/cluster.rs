//! [`cluster_status`]: `status` from every server of a list, queried concurrently.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Admin, FunctionStatus, DEFAULT_TIMEOUT};
use crate::{Result, ServerAddr, TlsConfig};

/// `status` from every server at once, keyed by server (duplicates collapse), like the
/// classic libraries' server-status call; each server gets [`DEFAULT_TIMEOUT`] to connect and
/// answer. A server that cannot be reached has its error in its entry.
///
/// ```no_run
/// # async fn f() -> gearbox_client::Result<()> {
/// let servers = gearbox_client::parse_servers("gear1,gear2:4731")?;
/// for (server, status) in gearbox_client::admin::cluster_status(&servers).await {
///     match status {
///         Ok(functions) => println!("{server}: {} functions", functions.len()),
///         Err(e) => println!("{server}: {e}"),
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn cluster_status(
    servers: &[ServerAddr],
) -> BTreeMap<ServerAddr, Result<Vec<FunctionStatus>>> {
    cluster_status_with_timeout(servers, DEFAULT_TIMEOUT).await
}

/// [`cluster_status`] with another per-server timeout.
pub async fn cluster_status_with_timeout(
    servers: &[ServerAddr],
    timeout: Duration,
) -> BTreeMap<ServerAddr, Result<Vec<FunctionStatus>>> {
    cluster_status_with(servers, timeout, None).await
}

/// [`cluster_status`] with another per-server timeout, over TLS when `tls` is given.
pub async fn cluster_status_with(
    servers: &[ServerAddr],
    timeout: Duration,
    tls: Option<&TlsConfig>,
) -> BTreeMap<ServerAddr, Result<Vec<FunctionStatus>>> {
    let queries = servers.iter().map(|addr| async move {
        let status = async {
            let mut admin = Admin::connect_with(addr.clone(), timeout, tls).await?;
            admin.status().await
        }
        .await;
        (addr.clone(), status)
    });
    futures::future::join_all(queries)
        .await
        .into_iter()
        .collect()
}
