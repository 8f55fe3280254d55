"""Propagation peer for hopscope's interop tests, using the official OpenTelemetry
Python SDK and its W3C and B3 propagators.

  propagation.py inject  FORMAT            start a span, print its context and the headers
  propagation.py extract FORMAT HEADERS    extract HEADERS (JSON), start a child span,
                                           print the child's context and its parent

FORMAT is w3c, b3single or b3multi. Output is one JSON object on stdout.
"""

import json
import sys

from opentelemetry import trace
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATORS = {
    "w3c": TraceContextTextMapPropagator(),
    "b3single": B3SingleFormat(),
    "b3multi": B3MultiFormat(),
}


def main():
    mode, fmt = sys.argv[1], sys.argv[2]
    propagator = PROPAGATORS[fmt]
    provider = TracerProvider()
    tracer = provider.get_tracer("interop")
    if mode == "inject":
        with tracer.start_as_current_span("python-root") as span:
            headers = {}
            propagator.inject(headers)
            ctx = span.get_span_context()
            print(json.dumps({
                "headers": headers,
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
            }))
    elif mode == "extract":
        headers = json.loads(sys.argv[3])
        parent_ctx = propagator.extract(headers)
        parent = trace.get_current_span(parent_ctx).get_span_context()
        with tracer.start_as_current_span("python-child", context=parent_ctx) as span:
            ctx = span.get_span_context()
            print(json.dumps({
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_span_id": format(parent.span_id, "016x"),
                "parent_valid": parent.is_valid,
                "parent_remote": parent.is_remote,
                "sampled": ctx.trace_flags.sampled,
                "tracestate": parent.trace_state.to_header(),
            }))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
