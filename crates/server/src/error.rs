//! [`ServerError`]: why the server could not start or stop. Its own module
//! so that the modules below the crate root (reload, worker) can name it
//! without depending on the root.

use crate::policy::PolicyLoadError;
use heimdall_resolver::ResolverError;

/// Why the server could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration's core selection does not fit this machine.
    #[error(transparent)]
    Config(#[from] heimdall_config::ConfigError),
    /// The resolver refused its settings.
    #[error("resolver: {0}")]
    Resolver(#[from] ResolverError),
    /// Local data, a block list or the ACL could not be loaded (the
    /// message names the file or key).
    #[error(transparent)]
    Policy(#[from] PolicyLoadError),
    /// A certificate, key or CA file could not be read or used (the
    /// message names the key and the file).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// A socket could not be created or bound.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The name-steering program could not be attached to the listen
    /// sockets (a kernel before 4.5, or BPF refused).
    #[error(
        "server.steering: name: cannot attach the steering program to the listen sockets \
         ({0}); set `server.steering: flow`"
    )]
    Steering(std::io::Error),
    /// An executor could not be started or ended abnormally.
    #[error("core {core}: {message}")]
    Executor {
        /// The core's index.
        core: usize,
        /// What went wrong.
        message: String,
    },
}
