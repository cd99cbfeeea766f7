"""Two stream translators in a row: an upstream's own events -> chat chunks -> a client format.

For a client format built on chat chunks (Anthropic Messages) served by an upstream that is not
OpenAI-wire (Gemini): the adapter's translator makes chat chunks, the front's turns them into
its events. Usage, errors and ``started`` are the outer translator's, with the inner's error
passed up.
"""

from __future__ import annotations

from providers.adapters.base import StreamTranslator


class ChainedStream(StreamTranslator):
    """``inner`` (upstream events -> chat chunk lines) feeding ``outer`` (chat chunks -> out)."""

    def __init__(self, inner: StreamTranslator, outer: StreamTranslator) -> None:
        super().__init__(include_usage=outer.include_usage)
        self.inner = inner
        self.outer = outer

    def _through(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for raw in lines:
            for line in raw.split(b"\n"):
                if line.startswith(b"data: "):
                    out += self.outer.feed(line[6:].decode())
        self._sync()
        return out

    def _sync(self) -> None:
        self.error = self.outer.error or self.inner.error
        self.usage = self.outer.usage
        self.served_model = self.outer.served_model or self.inner.served_model
        self.started = self.outer.started
        self.done = self.outer.done

    def feed(self, data: str, event: str = "") -> list[bytes]:
        return self._through(self.inner.feed(data, event))

    def finish(self) -> list[bytes]:
        out = self._through(self.inner.finish())
        out += self.outer.finish()
        self._sync()
        return out

    def fail_events(self, message: str, etype: str, code: str | None) -> list[bytes] | None:
        return self.outer.fail_events(message, etype, code)
