"""A client body of the wrong shape is the client's error, never the gateway's crash.

Translators read a body as its API defines it (``messages`` a list of objects, a block's
``source`` an object, ...). Checking every field's kind up front would repeat each provider
API's own validation, which the product leaves to the upstream; instead a translation that
trips over a field of another kind (a ``TypeError`` from iterating a number, an
``AttributeError`` from ``.get`` on a string) raises :class:`MalformedRequest`, an
``UnsupportedOperation``: a 400 for a translated instance, while a native instance still gets
the body as sent and its upstream judges it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from providers.adapters.base import SHAPE_ERRORS, UnsupportedOperation

P = ParamSpec("P")
R = TypeVar("R")


class MalformedRequest(UnsupportedOperation):
    """The request has a field whose kind the translation cannot read."""


def client_shaped(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a shape error while translating a client body into :class:`MalformedRequest`."""

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UnsupportedOperation:
            raise
        except SHAPE_ERRORS as exc:
            raise MalformedRequest(
                f"the request has a field of an unexpected type or shape: {exc}"
            ) from exc

    return guarded
