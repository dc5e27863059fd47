"""Exports a fixed set of metrics to Strata with the official OpenTelemetry SDK
and OTLP/HTTP protobuf exporter, as an instrumented service would.

Usage: export_metrics.py ENDPOINT
ENDPOINT is the full URL, e.g. http://127.0.0.1:9464/api/v1/otlp/v1/metrics.
tests/server/otlp_ingest.rs runs this and reads the values back from Strata.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource


def main(endpoint: str) -> None:
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.instance.id": "i-1",
            "deployment.environment": "test",
        }
    )
    exporter = OTLPMetricExporter(endpoint=endpoint)
    # Exports only when flushed below.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    views = [
        View(
            instrument_name="http.server.duration",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=[5.0, 10.0, 100.0]),
        )
    ]
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
    meter = provider.get_meter("strata.test", "1.0")

    requests = meter.create_counter("http.requests", unit="{request}", description="Requests served")
    requests.add(3, {"http.method": "GET"})
    requests.add(2, {"http.method": "GET"})
    requests.add(7, {"http.method": "POST"})

    queue = meter.create_up_down_counter("queue.depth", unit="{item}", description="Items waiting")
    queue.add(10)
    queue.add(-4)

    duration = meter.create_histogram("http.server.duration", unit="ms", description="Request time")
    for v in [3.0, 7.0, 7.5, 250.0]:
        duration.record(v, {"http.route": "/cart"})

    meter.create_observable_gauge(
        "process.cpu.utilization",
        callbacks=[lambda options: [Observation(0.25, {"cpu": "0"})]],
        unit="1",
        description="CPU in use",
    )

    if not provider.force_flush(timeout_millis=30_000):
        sys.exit("force_flush failed")
    provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
