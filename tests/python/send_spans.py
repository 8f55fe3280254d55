"""Sends one known trace to hopscope with the official OpenTelemetry Python SDK.

Usage: send_spans.py --protocol grpc|http --endpoint URL --service NAME

Prints one JSON object on stdout describing what was sent (trace id, span ids, names),
so the Rust test can check every field as hopscope serves it back.
"""

import argparse
import json
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", required=True)
    args = parser.parse_args()

    resource = Resource.create(
        {
            "service.name": args.service,
            "service.version": "1.2.3",
            "host.name": "vm-py-1",
            "cloud.provider": "aws",
            "cloud.region": "eu-west-1",
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter(args.protocol, args.endpoint)))
    tracer = provider.get_tracer("hopscope.test", "0.9")

    with tracer.start_as_current_span("warmup") as other:
        linked = other.get_span_context()

    with tracer.start_as_current_span(
        "GET /accounts/{id}",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/accounts/{id}", "http.response.status_code": 500},
        links=[Link(linked, {"link.reason": "retry-of"})],
    ) as root:
        time.sleep(0.02)
        with tracer.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "redis",
                "server.address": "redis-shard-2",
                "server.port": 6379,
                "db.operation.name": "GET",
                "retry.delays": [1.5, 2.5],
                "cache.hit": False,
            },
        ) as child:
            time.sleep(0.12)
            child.add_event("cache miss", {"key.count": 3})
            child.set_status(Status(StatusCode.ERROR, "timeout talking to redis-shard-2"))
        root.set_status(Status(StatusCode.ERROR))
        root_ctx = root.get_span_context()
        child_ctx = child.get_span_context()

    provider.shutdown()
    print(
        json.dumps(
            {
                "trace_id": format(root_ctx.trace_id, "032x"),
                "root_span_id": format(root_ctx.span_id, "016x"),
                "child_span_id": format(child_ctx.span_id, "016x"),
                "linked_trace_id": format(linked.trace_id, "032x"),
                "linked_span_id": format(linked.span_id, "016x"),
            }
        )
    )


if __name__ == "__main__":
    main()
