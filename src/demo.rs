//! `hopscope demo`: the all-in-one plus the built-in banking workload (crate
//! `hopscope-demo`), which exports to this process's own OTLP/gRPC port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hopscope_demo::DemoArgs;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::all_in_one::{self, Server};
use crate::config::HopscopeConfig;

/// How long the workload may take to stop and flush its spans before the collector stops
/// anyway.
const WORKLOAD_STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs the all-in-one until SIGINT/SIGTERM with the demo workload beside it.
///
/// Order matters both ways: the server starts (data directory locked, ports bound) before
/// the workload, so a data directory in use or a port taken stops the demo before it
/// claims to run; on shutdown the workload stops and flushes its exporters into the
/// still-open collector before the collector closes, so no span export is lost.
pub async fn run(config: HopscopeConfig, args: DemoArgs) -> anyhow::Result<()> {
    let endpoint = format!("http://{}", loopback(config.collector.grpc_listen));
    let server = Server::start(config).await?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let workload_stopped = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let workload = tokio::spawn(async move {
        if let Err(err) = hopscope_demo::run(args.into_config(endpoint), workload_stopped).await {
            error!(error = %err, "demo workload failed");
        }
    });
    let shutdown = async move {
        let signal = all_in_one::shutdown_signal().await;
        info!(
            signal,
            "stopping the demo workload and flushing its spans before the collector"
        );
        let _ = stop_tx.send(true);
        if tokio::time::timeout(WORKLOAD_STOP_GRACE, workload).await.is_err() {
            warn!(
                grace_secs = WORKLOAD_STOP_GRACE.as_secs(),
                "demo workload did not stop in time"
            );
        }
        signal
    };
    server.serve(shutdown).await
}

/// Where a local client reaches a listener bound to `addr` (an unspecified address
/// becomes loopback).
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}
