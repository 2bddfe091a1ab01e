//! Errors of the server layer.

/// What can stop the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listening socket failed in a way that is not a per-connection problem.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}
