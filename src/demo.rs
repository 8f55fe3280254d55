//! `hopscope demo`: the all-in-one plus the built-in banking workload (crate
//! `hopscope-demo`), which exports to this process's own OTLP/gRPC port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hopscope_demo::DemoArgs;
use tokio::sync::watch;
use tracing::{error, warn};

use crate::all_in_one;
use crate::config::HopscopeConfig;

/// Runs the all-in-one until SIGINT/SIGTERM with the demo workload beside it.
pub async fn run(config: HopscopeConfig, args: DemoArgs) -> anyhow::Result<()> {
    let endpoint = format!("http://{}", loopback(config.collector.grpc_listen));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let shutdown = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let workload = tokio::spawn(async move {
        if let Err(err) = hopscope_demo::run(args.into_config(endpoint), shutdown).await {
            error!(error = %err, "demo workload failed");
        }
    });
    let result = all_in_one::run(config).await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(15), workload).await.is_err() {
        warn!("demo workload did not stop within 15 s");
    }
    result
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
