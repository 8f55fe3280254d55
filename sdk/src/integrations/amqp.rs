//! RabbitMQ (AMQP 0-9-1, lapin): a producer span around publish with the context in the
//! message headers, and a consumer span per delivery whose parent is the producer's span.
//!
//! Attributes: `messaging.system=rabbitmq`, `messaging.destination.name` (exchange, or
//! the routing key on the default exchange, which is the queue name),
//! `messaging.rabbitmq.destination.routing_key`, `messaging.operation.type`
//! (`send` / `process`), `messaging.operation.name`, `messaging.message.body.size`,
//! `server.address`, `server.port`.

use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

use super::semconv::*;
use crate::span::{Span, SpanKind};
use crate::tracer::Tracer;

/// The broker node, as spans name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// `server.address`.
    pub address: String,
    /// `server.port`.
    pub port: u16,
}

impl Broker {
    /// A broker.
    pub fn new(address: impl Into<String>, port: u16) -> Broker {
        Broker {
            address: address.into(),
            port,
        }
    }
}

fn destination<'a>(exchange: &'a str, routing_key: &'a str) -> &'a str {
    if exchange.is_empty() { routing_key } else { exchange }
}

/// Publishes `payload` inside a producer span (child of the current context) whose
/// context travels in the message headers (merged into `properties`' headers). The span
/// ends when the broker has the message (after the publisher confirm, if the channel is
/// in confirm mode).
pub async fn publish(
    tracer: &Tracer,
    broker: &Broker,
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> lapin::Result<()> {
    let dest = destination(exchange, routing_key).to_owned();
    let mut span = tracer
        .span(format!("publish {dest}"))
        .kind(SpanKind::Producer)
        .attribute(MESSAGING_SYSTEM, "rabbitmq")
        .attribute(MESSAGING_DESTINATION_NAME, dest)
        .attribute(MESSAGING_RABBITMQ_ROUTING_KEY, routing_key.to_owned())
        .attribute(MESSAGING_OPERATION_TYPE, "send")
        .attribute(MESSAGING_OPERATION_NAME, "publish")
        .attribute(MESSAGING_MESSAGE_BODY_SIZE, payload.len() as i64)
        .attribute(SERVER_ADDRESS, broker.address.clone())
        .attribute(SERVER_PORT, broker.port)
        .start();
    let mut headers = properties.headers().clone().unwrap_or_default();
    tracer.inject(span.context(), &mut headers);
    let properties = properties.with_headers(headers);
    let result = async {
        let too_long = || {
            lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                lapin::ChannelState::Error,
                "exchange or routing key longer than 255 bytes",
            ))
        };
        let exchange = ShortString::try_new(exchange).map_err(|_| too_long())?;
        let routing_key = ShortString::try_new(routing_key).map_err(|_| too_long())?;
        channel
            .basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await?
            .await
    }
    .await;
    match result {
        Ok(_) => {
            span.end();
            Ok(())
        }
        Err(e) => {
            span.record_error(&e);
            span.end();
            Err(e)
        }
    }
}

/// The remote context in a delivery's headers, if any.
pub fn extract(tracer: &Tracer, delivery: &Delivery) -> Option<crate::SpanContext> {
    let empty = FieldTable::default();
    tracer.extract(delivery.properties.headers().as_ref().unwrap_or(&empty))
}

/// Starts the consumer span for one delivery from `queue`: its parent is the producer's
/// span from the message headers (a new trace when there is none). Run the handler
/// inside it (`handler.in_span(span)`) so its own hops become children.
pub fn process_span(tracer: &Tracer, broker: &Broker, queue: &str, delivery: &Delivery) -> Span {
    let parent = extract(tracer, delivery);
    let dest = destination(delivery.exchange.as_str(), queue).to_owned();
    tracer
        .span(format!("process {dest}"))
        .kind(SpanKind::Consumer)
        .parent(parent.as_ref())
        .attribute(MESSAGING_SYSTEM, "rabbitmq")
        .attribute(MESSAGING_DESTINATION_NAME, dest)
        .attribute(MESSAGING_RABBITMQ_ROUTING_KEY, delivery.routing_key.as_str().to_owned())
        .attribute(MESSAGING_OPERATION_TYPE, "process")
        .attribute(MESSAGING_OPERATION_NAME, "deliver")
        .attribute(MESSAGING_MESSAGE_BODY_SIZE, delivery.data.len() as i64)
        .attribute(SERVER_ADDRESS, broker.address.clone())
        .attribute(SERVER_PORT, broker.port)
        .start()
}
