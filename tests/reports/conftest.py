from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.reports.helpers import all_gateway_permissions, token_client


@pytest.fixture
def api(db: None) -> APIClient:
    """The API token client of a staff user holding every gateway model permission."""
    return token_client(staff=True, perms=all_gateway_permissions())
