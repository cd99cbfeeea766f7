from tests.e2e.conftest import e2e, gateway_factory, gateway_server  # noqa: F401
from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
