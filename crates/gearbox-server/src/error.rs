//! Errors of the server layer.

/// What can stop the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listening socket failed in a way that is not a per-connection problem.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// The store could not be read at start-up.
    #[error("cannot load stored jobs: {0}")]
    Store(#[source] gearbox_store::StoreError),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}
