from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.reports.helpers import token_client


@pytest.fixture
def api(db: None) -> APIClient:
    """A staff user's API token client."""
    return token_client(staff=True)
