"""The span exporter wrapper of :mod:`gateway.proxy.tracing` (imported only when tracing is on)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class QuietExporter(SpanExporter):
    """Wraps an exporter so that a collector that is down costs one warning a minute at most.

    The OTLP exporter logs every failed batch and every retry; its logger is silenced here
    (:meth:`install`) and this wrapper says instead how many spans were dropped, at most once
    per ``interval`` of ``clock``."""

    def __init__(
        self,
        inner: SpanExporter,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.interval = interval
        self.clock = clock
        self.dropped = 0
        self.next_warning = float("-inf")
        self.lock = threading.Lock()
        self.install()

    def install(self) -> None:
        logging.getLogger(type(self.inner).__module__).addFilter(_drop_record)
        logging.getLogger("opentelemetry.exporter.otlp.common.http").addFilter(_drop_record)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter must not take the processor's thread down
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            with self.lock:
                self.dropped += len(spans)
                now = self.clock()
                if now >= self.next_warning:
                    self.next_warning = now + self.interval
                    dropped, self.dropped = self.dropped, 0
                    logger.warning(
                        "tracing: the OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) did not take "
                        "the spans; %d dropped (next warning in %.0f s at the earliest)",
                        dropped,
                        self.interval,
                    )
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _drop_record(record: logging.LogRecord) -> bool:
    return False
