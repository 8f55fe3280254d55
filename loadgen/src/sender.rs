//! Sending one pre-encoded body over OTLP/gRPC or OTLP/HTTP and reading the answer.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

/// The OTLP trace export method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How a send ended.
#[derive(Debug)]
pub enum Outcome {
    /// Acknowledged; the number of spans the server rejected (OTLP partial success).
    Acked { rejected: u64 },
    /// Back-pressure (gRPC RESOURCE_EXHAUSTED/UNAVAILABLE, HTTP 429/503).
    Throttled,
    /// Any other failure.
    Failed(String),
}

/// One connection to the target.
pub enum Sender {
    /// OTLP/gRPC over one HTTP/2 connection.
    Grpc(tonic::client::Grpc<Channel>),
    /// OTLP/HTTP protobuf over one keep-alive connection.
    Http { client: reqwest::Client, url: String },
}

impl Sender {
    /// Connects once (gRPC) or prepares a single-connection client (HTTP).
    pub async fn connect(protocol: crate::Protocol, endpoint: &str) -> anyhow::Result<Self> {
        match protocol {
            crate::Protocol::Grpc => {
                let channel = Endpoint::from_shared(endpoint.to_owned())?
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await?;
                let grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
                Ok(Sender::Grpc(grpc))
            }
            crate::Protocol::Http => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(30))
                    .build()?;
                let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
                    endpoint.to_owned()
                } else {
                    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
                };
                Ok(Sender::Http { client, url })
            }
        }
    }

    /// Sends one encoded `ExportTraceServiceRequest`.
    pub async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Sender::Grpc(grpc) => {
                if let Err(err) = grpc.ready().await {
                    return Outcome::Failed(format!("connection not ready: {err}"));
                }
                let path = PathAndQuery::from_static(EXPORT_PATH);
                match grpc.unary(tonic::Request::new(body), path, RawCodec).await {
                    Ok(response) => Outcome::Acked {
                        rejected: rejected(response.get_ref()),
                    },
                    Err(status) => match status.code() {
                        tonic::Code::ResourceExhausted | tonic::Code::Unavailable => Outcome::Throttled,
                        code => Outcome::Failed(format!("grpc {code:?}: {}", status.message())),
                    },
                }
            }
            Sender::Http { client, url } => {
                let sent = client
                    .post(url.as_str())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(body)
                    .send()
                    .await;
                let response = match sent {
                    Ok(response) => response,
                    Err(err) => return Outcome::Failed(format!("http: {err}")),
                };
                let status = response.status().as_u16();
                let answer = response.bytes().await.unwrap_or_default();
                match status {
                    200 => match ExportTraceServiceResponse::decode(answer) {
                        Ok(decoded) => Outcome::Acked {
                            rejected: rejected(&decoded),
                        },
                        Err(err) => Outcome::Failed(format!("undecodable response: {err}")),
                    },
                    429 | 503 => Outcome::Throttled,
                    _ => Outcome::Failed(format!("http {status}: {}", String::from_utf8_lossy(&answer))),
                }
            }
        }
    }
}

fn rejected(response: &ExportTraceServiceResponse) -> u64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// Sends already-encoded protobuf bytes; decodes the response with prost.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|err| Status::internal(format!("undecodable response: {err}")))
    }
}
