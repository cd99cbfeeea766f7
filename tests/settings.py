"""Settings of the test suite: the gateway's, with ``DEBUG`` on as in development.

``DEBUG`` is off unless set; tests (and the server processes they start, which inherit the
environment) run the development defaults: generated secrets, any host, plain-HTTP cookies.
"""

import os

os.environ.setdefault("DEBUG", "1")

from gateway.settings import *  # noqa: F403
