//! The risk service: one gRPC hop in the demo (account → risk, `demo.risk.v1.RiskScoring/
//! Score`), a real tonic server and client on loopback traced by hopscope-sdk's gRPC
//! layers, so `rpc` hops and the risk service's peer show up in hopscope. Hand-written
//! messages (prost derives) keep it free of a protobuf build step.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hopscope_sdk::integrations::grpc::{GrpcClientLayer, GrpcClientService, GrpcServerLayer};
use hopscope_sdk::{CloudKind, SpanKind, Tracer, TracerProvider};
use tonic::transport::Channel;

use crate::{DemoError, Instance};

const SERVICE: &str = "demo.risk.v1.RiskScoring";
const SCORE: &str = "/demo.risk.v1.RiskScoring/Score";

const RISK: Instance = Instance {
    service: "demo-risk",
    host: "risk-dc1-02",
    kind: CloudKind::Private,
    provider: "onprem",
    region: "dc1",
    zone: "rack-09",
};

/// `Score` request.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScoreRequest {
    #[prost(uint64, tag = "1")]
    account: u64,
    #[prost(int64, tag = "2")]
    amount: i64,
}

/// `Score` reply: risk in per mille.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScoreReply {
    #[prost(uint32, tag = "1")]
    risk: u32,
}

/// The tonic service: `Score`, and UNIMPLEMENTED for anything else.
#[derive(Clone)]
struct RiskScoring {
    tracer: Tracer,
}

impl tonic::server::NamedService for RiskScoring {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for RiskScoring {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let tracer = self.tracer.clone();
        Box::pin(async move {
            if req.uri().path() != SCORE {
                return Ok(tonic::Status::unimplemented(req.uri().path().to_owned()).into_http());
            }
            let score = tower::service_fn(move |r: tonic::Request<ScoreRequest>| {
                let tracer = tracer.clone();
                async move {
                    let r = r.into_inner();
                    // The model runs in-process: an internal span under the server span.
                    let mut model = tracer.span("risk-model").kind(SpanKind::Internal).start();
                    model.set_attribute("risk.model", "rules-v3");
                    tokio::time::sleep(crate::backends::ms(1, 3)).await;
                    let risk = ((r.account.wrapping_mul(31) ^ r.amount.unsigned_abs()) % 1000) as u32;
                    model.set_attribute("risk.score", risk);
                    model.end();
                    Ok::<_, tonic::Status>(tonic::Response::new(ScoreReply { risk }))
                }
            });
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(score, req).await)
        })
    }
}

/// Starts the risk service (its own tracer provider, returned for flushing) on loopback.
pub(crate) async fn serve(otlp_endpoint: &str) -> Result<(TracerProvider, SocketAddr), DemoError> {
    let provider = crate::provider(otlp_endpoint, &RISK)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = tonic::transport::Server::builder()
        .layer(GrpcServerLayer::new(provider.tracer("risk")))
        .add_service(RiskScoring {
            tracer: provider.tracer("risk"),
        });
    let incoming =
        futures_util::stream::unfold(listener, |l| async move { Some((l.accept().await.map(|(s, _)| s), l)) });
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::warn!(error = %e, "demo risk service stopped");
        }
    });
    Ok((provider, addr))
}

/// A traced gRPC client of the risk service (client spans from the caller's tracer).
#[derive(Clone)]
pub(crate) struct RiskClient {
    grpc: tonic::client::Grpc<GrpcClientService<Channel>>,
}

impl RiskClient {
    pub(crate) fn new(addr: SocketAddr, tracer: Tracer) -> Result<RiskClient, DemoError> {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
            .connect_lazy();
        let layer = GrpcClientLayer::new(tracer).with_server(addr.ip().to_string(), addr.port());
        Ok(RiskClient {
            grpc: tonic::client::Grpc::new(tower::Layer::layer(&layer, channel)),
        })
    }

    /// The risk of a transfer, in per mille.
    pub(crate) async fn score(&self, account: u64, amount: i64) -> Result<u32, tonic::Status> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(SCORE);
        let reply: tonic::Response<ScoreReply> = grpc
            .unary(
                tonic::Request::new(ScoreRequest { account, amount }),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await?;
        Ok(reply.into_inner().risk)
    }
}
