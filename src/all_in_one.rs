//! The all-in-one role: OTLP receivers and the query API in one process, on one store.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hopscope_collector::{CloudRules, Ingest, OtlpGrpcReceiver, OtlpHttpReceiver, RecordSink};
use hopscope_query_api::AnalysisConfig;
use hopscope_storage::AggregateReader;
use hopscope_storage::clickhouse::ClickHouseStore;
use hopscope_storage::deferred::DeferredStore;
use hopscope_storage::embedded::EmbeddedStore;
use hopscope_storage::{AggregateStore, SpanReader, SpanWriter};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::HopscopeConfig;
use crate::observability::{self, Observed};
use crate::pipeline::{Pipeline, StoreMemory};

/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The store behind the pipeline: writer, reader, aggregates (when the store has them)
/// and whether the store keeps spans across restarts.
type Stores = (
    Arc<dyn SpanWriter>,
    Arc<dyn SpanReader>,
    Option<Arc<dyn AggregateReader>>,
    StoreMemory,
);

/// Runs until SIGINT or SIGTERM; see [`Server::serve`].
pub async fn run(config: HopscopeConfig) -> anyhow::Result<()> {
    Server::start(config).await?.serve(shutdown_signal()).await
}

/// A started all-in-one: the data directory is locked, every port is bound and the store
/// and write-ahead log are open, but nothing is served yet. Everything a user can get
/// wrong on the command line (a data directory in use, a port taken, a bad configuration)
/// fails in [`Server::start`], before any work starts.
pub struct Server {
    config: HopscopeConfig,
    _lock: File,
    pipeline: Pipeline,
    ingest: Arc<Ingest>,
    app: axum::Router,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    query_listener: TcpListener,
}

impl Server {
    /// Checks the configuration, locks the data directory, binds the three ports and opens
    /// the store and the write-ahead log. Errors name the flag that fixes them.
    pub async fn start(config: HopscopeConfig) -> anyhow::Result<Self> {
        let lock = lock_data_dir(&config)?;
        let cloud_rules =
            CloudRules::new(&config.cloud).map_err(|e| anyhow::anyhow!("invalid [cloud] configuration: {e}"))?;
        config
            .sla
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid [sla] configuration: {e}"))?;
        config
            .layers
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid [layers] configuration: {e}"))?;
        let grpc_listener = bind(config.collector.grpc_listen, "OTLP/gRPC", "--grpc-listen").await?;
        let http_listener = bind(config.collector.http_listen, "OTLP/HTTP", "--http-listen").await?;
        let query_listener = bind(config.query.listen, "query API and UI", "--query-listen").await?;

        let (store_writer, reader, aggregates, memory): Stores = if config.clickhouse.enabled() {
            let store = open_clickhouse(&config).await?;
            (store.clone(), store.clone(), Some(store), StoreMemory::Persistent)
        } else {
            let store = Arc::new(EmbeddedStore::new(config.embedded.clone()));
            (store.clone(), store.clone(), Some(store), StoreMemory::Volatile)
        };
        let pipeline = Pipeline::open(&config, store_writer, memory)?;
        let ingest = Arc::new(
            Ingest::new(Arc::clone(&pipeline.log) as Arc<dyn RecordSink>)
                .with_cloud_rules(cloud_rules)
                .with_max_inflight_requests(config.collector.max_inflight_requests),
        );
        let observed = Observed {
            ingest: Arc::clone(&ingest),
            wal: Arc::clone(&pipeline.wal),
            feeder: Arc::clone(&pipeline.feeder_stats),
        };
        let analysis = AnalysisConfig {
            sla: config.sla.clone(),
            layers: config.layers.clone(),
        };
        let ui = hopscope_ui::router(hopscope_ui::UiState::new(
            Arc::clone(&reader),
            aggregates.clone(),
            analysis.clone(),
        ));
        let app = hopscope_query_api::router_with_aggregates(reader, aggregates, &config.query, &analysis)
            .merge(observability::router(observed))
            .merge(ui);
        Ok(Self {
            config,
            _lock: lock,
            pipeline,
            ingest,
            app,
            grpc_listener,
            http_listener,
            query_listener,
        })
    }

    /// The URL a browser on this machine opens for the UI (an unspecified listen address
    /// becomes `localhost`).
    pub fn ui_url(&self) -> String {
        ui_url(self.query_listener.local_addr().unwrap_or(self.config.query.listen))
    }

    /// Serves until `shutdown` completes, then stops accepting connections, lets in-flight
    /// requests finish, drains the write-ahead log into the store (all within
    /// [`SHUTDOWN_GRACE`]) and returns. Whatever is not drained stays in the log and is
    /// replayed at the next start. `shutdown` names why it stopped (for the log).
    pub async fn serve(self, shutdown: impl Future<Output = &'static str>) -> anyhow::Result<()> {
        let ui_url = self.ui_url();
        let Self {
            config,
            _lock,
            pipeline,
            ingest,
            app,
            grpc_listener,
            http_listener,
            query_listener,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                // Returns when the flag flips or the sender is gone; either means stop.
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };

        let grpc = OtlpGrpcReceiver::builder(ingest.clone())
            .max_request_bytes(config.collector.max_request_bytes)
            .build();
        let http = OtlpHttpReceiver::builder(ingest.clone())
            .max_request_bytes(config.collector.max_request_bytes)
            .build();
        let (feeder_stop_tx, feeder_stop_rx) = watch::channel(false);
        let feeder = pipeline.spawn(async move {
            let mut rx = feeder_stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        });

        let mut servers = tokio::task::JoinSet::new();
        let grpc_stop = stopped();
        servers.spawn(async move {
            grpc.serve(grpc_listener, grpc_stop)
                .await
                .context("otlp grpc receiver failed")
        });
        let http_stop = stopped();
        servers.spawn(async move {
            http.serve(http_listener, http_stop)
                .await
                .context("otlp http receiver failed")
        });
        let query_stop = stopped();
        servers.spawn(async move {
            axum::serve(query_listener, app)
                .with_graceful_shutdown(query_stop)
                .await
                .context("query api server failed")
        });
        info!(
            otlp_grpc = %config.collector.grpc_listen,
            otlp_http = %config.collector.http_listen,
            "hopscope is running; UI: {ui_url} (also the query API, {ui_url}api)"
        );

        let outcome = tokio::select! {
            signal = shutdown => {
                info!(signal, "shutting down");
                Ok(())
            }
            Some(result) = servers.join_next() => {
                // A server stopping on its own is a failure: report it and stop the others.
                flatten(result).and_then(|()| Err(anyhow::anyhow!("a server stopped unexpectedly")))
            }
        };
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(result) = servers.join_next().await {
                if let Err(err) = flatten(result) {
                    error!(error = %format!("{err:#}"), "server failed during shutdown");
                }
            }
            // The receivers are closed: nothing more is appended, so the feeder can drain.
            let _ = feeder_stop_tx.send(true);
            let _ = feeder.await;
        })
        .await;
        if drained.is_err() {
            error!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "shutdown grace period over; exiting anyway"
            );
        }
        let stats = ingest.stats();
        info!(?stats, "stopped");
        outcome
    }
}

/// Connects to ClickHouse. A server that is down (a retryable error) does not stop the
/// start: the collector acknowledges into its write-ahead log while the store keeps
/// connecting in the background. Bad settings (a permanent error) stop the start.
async fn open_clickhouse(config: &HopscopeConfig) -> anyhow::Result<Arc<dyn AggregateStore>> {
    match ClickHouseStore::open(config.clickhouse.clone()).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(err) if err.is_retryable() => {
            warn!(error = %err, "clickhouse is not reachable; starting anyway and connecting in the background");
            let settings = config.clickhouse.clone();
            let deferred = DeferredStore::connect("clickhouse", Duration::from_millis(500), move || {
                let settings = settings.clone();
                async move { Ok(Arc::new(ClickHouseStore::open(settings).await?) as Arc<dyn AggregateStore>) }
            });
            Ok(Arc::new(deferred))
        }
        Err(err) => Err(err).context("cannot start the clickhouse store"),
    }
}

fn flatten(result: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    result.context("server task panicked")?
}

/// Binds `addr` for `role`; the error names the address, the reason and the `flag` that
/// picks another address.
async fn bind(addr: SocketAddr, role: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        let why = if err.kind() == std::io::ErrorKind::AddrInUse {
            "the port is in use (another hopscope, or another program)".to_owned()
        } else {
            err.to_string()
        };
        anyhow::anyhow!("cannot listen on {addr} for the {role}: {why}; choose another address with {flag}")
    })
}

/// The browser URL for a query listener bound to `addr`.
pub fn ui_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}/", addr.port())
}

/// Creates the data directory and takes an exclusive lock on `hopscope.lock` inside it,
/// held for the life of the returned file.
fn lock_data_dir(config: &HopscopeConfig) -> anyhow::Result<File> {
    let dir = &config.data_dir.0;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let path = dir.join("hopscope.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    file.try_lock().map_err(|err| match err {
        std::fs::TryLockError::WouldBlock => anyhow::anyhow!(
            "data directory {} is in use by another hopscope process; stop that process or choose \
             another directory with --data-dir",
            dir.display()
        ),
        std::fs::TryLockError::Error(err) => anyhow::anyhow!("cannot lock {}: {err}", path.display()),
    })?;
    Ok(file)
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and names the one that came.
pub async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    }
}
