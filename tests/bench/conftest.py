from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
