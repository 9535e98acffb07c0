//! hallmark's verification service: the C2PA soft-binding resolution API over a registry of
//! stamps, `POST /v1/verify`, and a verify page for people without a terminal.
//!
//! Request handling is stateless: everything a request needs is in the database or in the
//! read-only configuration, so several instances can run behind a load balancer over one
//! PostgreSQL database. The CLI's `hallmark serve` is a thin wrapper over [`run`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = hallmark_server::store::Store::open("sqlite:registry.db").await?;
//! let app = hallmark_server::router(hallmark_server::State::new(
//!     store,
//!     hallmark_server::Config::default(),
//! ));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
mod jumbf;
mod metrics;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use api::{ErrorBody, Match, Matches, RecordIn, router};

/// What the server is configured with (read-only while it runs).
pub struct Config {
    /// Watermark keys to detect with (`/matches/byContent`, `/v1/verify`).
    pub keys: Vec<hallmark::WatermarkKey>,
    /// Trust anchors for C2PA signers.
    pub trust: hallmark::c2pa::TrustSettings,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Longest a request may take.
    pub timeout: Duration,
    /// Requests handled at once (more wait, until their timeout).
    pub concurrency: usize,
    /// Reads (`/matches`, `/manifests`, `/v1/verify`) need a token too.
    pub private_reads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: vec![],
            trust: hallmark::c2pa::TrustSettings::default(),
            max_body: 50 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            concurrency: 64,
            private_reads: false,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("keys", &self.keys.len())
            .field("max_body", &self.max_body)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("private_reads", &self.private_reads)
            .finish_non_exhaustive()
    }
}

/// Shared, read-only request state (cheap to clone).
#[derive(Clone)]
pub struct State(Arc<Inner>);

struct Inner {
    store: store::Store,
    config: Config,
    verifier: hallmark::Verifier,
    metrics: metrics::Metrics,
    /// Bounds the CPU-heavy work (decoding, detection) to the cores there are.
    cpu: tokio::sync::Semaphore,
}

impl State {
    /// State over an open store.
    pub fn new(store: store::Store, config: Config) -> State {
        let verifier = hallmark::Verifier::new(&config.keys, config.trust.clone());
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        State(Arc::new(Inner {
            store,
            verifier,
            metrics: metrics::Metrics::new(),
            cpu: tokio::sync::Semaphore::new(cores),
            config,
        }))
    }
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight and returns.
/// `ready` is called with the bound address once the server accepts connections.
///
/// # Errors
/// The database cannot be opened, or the address cannot be bound.
pub async fn run(
    listen: &str,
    db_url: &str,
    config: Config,
    ready: impl FnOnce(SocketAddr, &str),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = store::Store::open(db_url).await?;
    let backend = store.backend();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let state = State::new(store.clone(), config);
    ready(addr, backend);
    tracing::info!(%addr, backend, "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Runs `f` on a fresh multi-threaded runtime: for callers without one (the CLI).
///
/// # Errors
/// The runtime cannot start.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> std::io::Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}
