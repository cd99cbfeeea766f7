"""The bedrock type at save (model, admin, API, import), its credentials at rest, export and
re-import, the health probe and check_providers against the SigV4-checking fake, and the
LiteLLM mapping."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from gateway.config_io.migrate import config_migrate
from providers.health import health_check_run
from providers.models import HealthCheck, Provider, ProviderKeyCredential
from providers.snapshot import provider_snapshots_all
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_provider
from tests.fakes import wire_bedrock
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import all_gateway_permissions, token_client

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _config(**key: object) -> dict[str, object]:
    entry = {"name": "aws-1", "primary": True, **key}
    return {"providers": [{"name": "bedrock-east", "type": "bedrock", "keys": [entry]}]}


@pytest.mark.django_db
def test_region_is_required_at_save_naming_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        Provider(name="b", provider_type="bedrock").full_clean()
    assert "region" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        Provider(name="b", provider_type="bedrock", region="Virginia").full_clean()
    assert "region" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        Provider(name="o", provider_type="openai", region="us-east-1").full_clean()
    assert "region" in exc.value.message_dict
    ok = Provider(name="b", provider_type="bedrock", region="eu-central-1")
    ok.full_clean()  # no base_url needed: the region's endpoint
    assert ok.effective_base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    Provider(name="r", provider_type="bedrock", region="${AWS_REGION_NAME}").full_clean()

    r = token_client(staff=True, perms=all_gateway_permissions()).post(
        "/api/providers/", {"name": "b", "provider_type": "bedrock"}, format="json"
    )
    assert r.status_code == 400 and "region" in r.json()["error"]["fields"]

    with pytest.raises(ConfigError) as cexc:
        config_import(data=_config(access_key_id=AKID, secret_access_key=SECRET), environ={})
    assert any("region" in e for e in cexc.value.errors)
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_import_composes_credentials_encrypted_and_resolves_references() -> None:
    data = _config(
        access_key_id="${AWS_ACCESS_KEY_ID}",
        secret_access_key="${AWS_SECRET_ACCESS_KEY}",
        session_token=None,
    )
    data["providers"][0]["region"] = "us-east-1"  # type: ignore[index]
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET}
    config_import(data=data, environ=env)
    key = ProviderKeyCredential.objects.get()
    assert key.api_key == "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}"
    assert key.masked_key == "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", AKID)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        [snap] = provider_snapshots_all().values()
    assert snap.region == "us-east-1"
    assert snap.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert snap.keys[0].api_key == f"{AKID}:{SECRET}"

    # A region reference resolves when the configuration loads; an unset one is named.
    data["providers"][0]["region"] = "${AWS_REGION_NAME}"  # type: ignore[index]
    with pytest.raises(ConfigError) as cexc:
        config_import(data=data, environ=env)
    assert any("region" in e and "AWS_REGION_NAME" in e for e in cexc.value.errors)
    config_import(data=data, environ={**env, "AWS_REGION_NAME": "ap-south-1"})
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**env, "AWS_REGION_NAME": "ap-south-1"}.items():
            mp.setenv(name, value)
        [snap] = provider_snapshots_all().values()
    assert snap.region == "ap-south-1"
    assert snap.base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"

    # Literal credentials: encrypted at rest, masked without a piece of the secret.
    data = _config(access_key_id=AKID, secret_access_key=SECRET, session_token="tok-SECRET-1")
    data["providers"][0]["region"] = "us-east-1"  # type: ignore[index]
    config_import(data=data, environ={})
    key = ProviderKeyCredential.objects.get()
    assert key.api_key == f"{AKID}:{SECRET}:tok-SECRET-1"
    assert key.masked_key == "…MPLE:****:****"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_providerkeycredential")
        [(raw,)] = cursor.fetchall()
    assert SECRET not in raw and AKID not in raw

    exported = config_export()["providers"][0]["keys"][0]
    assert exported["access_key_id"] == AKID
    assert exported["secret_access_key"] == "***" and exported["session_token"] == "***"
    assert "api_key" not in exported
    # The export re-imports: the redacted parts keep what is stored.
    config_import(data={"providers": config_export()["providers"]}, environ={})
    assert ProviderKeyCredential.objects.get().api_key == f"{AKID}:{SECRET}:tok-SECRET-1"


@pytest.mark.django_db
def test_incomplete_credentials_are_refused_naming_the_field() -> None:
    data = _config(access_key_id=AKID)
    data["providers"][0]["region"] = "us-east-1"  # type: ignore[index]
    with pytest.raises(ConfigError) as cexc:
        config_import(data=data, environ={})
    assert any("secret_access_key" in e for e in cexc.value.errors)
    data = _config(api_key="just-one-token")
    data["providers"][0]["region"] = "us-east-1"  # type: ignore[index]
    with pytest.raises(ConfigError) as cexc:
        config_import(data=data, environ={})
    assert any("api_key" in e for e in cexc.value.errors)

    client = token_client(staff=True, perms=all_gateway_permissions())
    body = {
        "name": "b",
        "provider_type": "bedrock",
        "region": "us-west-2",
        "keys": [{"key_name": "k", "access_key_id": AKID}],
    }
    r = client.post("/api/providers/", body, format="json")
    assert r.status_code == 400 and "secret_access_key" in str(r.json())
    body["keys"] = [{"key_name": "k", "access_key_id": AKID, "secret_access_key": SECRET}]
    r = client.post("/api/providers/", body, format="json")
    assert r.status_code == 201, r.json()
    assert SECRET not in r.content.decode()
    assert ProviderKeyCredential.objects.get().api_key == f"{AKID}:{SECRET}"


@pytest.mark.django_db
def test_admin_add_form_takes_region_and_aws_credentials(admin_client: Client) -> None:
    url = admin_url(Provider, "add")
    page = admin_client.get(url).content.decode()
    assert 'value="bedrock"' in page and "keys-0-secret_access_key" not in page
    data = admin_form_data(admin_client, url, Provider)
    data.update(name="br", provider_type="bedrock")
    data["keys-TOTAL_FORMS"] = "1"
    data.update({"keys-0-key_name": "aws-1", "keys-0-is_primary": "on"})
    data.update({"keys-0-account_group": "0", "keys-0-is_enabled": "on"})
    data.update({"keys-0-access_key_id": AKID})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    errors = page_errors(response)
    assert "region" in errors and "keys.secret_access_key" in errors
    data.update({"region": "us-east-1", "keys-0-secret_access_key": SECRET})
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    stored = Provider.objects.get(name="br")
    assert stored.keys.get().api_key == f"{AKID}:{SECRET}"
    change = admin_client.get(admin_url(Provider, "change", stored.pk)).content.decode()
    assert SECRET not in change and "…MPLE:****" in change


@pytest.mark.django_db
def test_health_probe_and_check_providers(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    good = make_provider("br-ok", "bedrock", upstream_url=fake_upstream.url)
    health_check_run(provider_id=good.id)
    assert HealthCheck.objects.get(provider=good.provider).status == "healthy"
    [req] = fake_upstream.requests()
    assert req.method == "GET" and req.path == "/foundation-models"
    assert req.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")

    make_provider(
        "br-bad",
        "bedrock",
        upstream_url=fake_upstream.url,
        keys=[{"name": "k", "primary": True, "api_key": "AKIABAD0000000000000:wrong"}],
    )
    out = StringIO()
    call_command("check_providers", stdout=out)
    rows = {line.split()[0]: line.split() for line in out.getvalue().splitlines()[1:]}
    assert rows["br-ok"][:3] == ["br-ok", "bedrock", "healthy"]
    assert rows["br-bad"][:3] == ["br-bad", "bedrock", "down"]
    assert "wrong" not in out.getvalue()
    assert "signature we calculated does not match" in out.getvalue()
    assert wire_bedrock.secret_for("AKIABAD0000000000000") != "wrong"


def test_litellm_bedrock_entries() -> None:
    result = config_migrate(
        fmt="litellm",
        source={
            "model_list": [
                {
                    "model_name": "claude",
                    "litellm_params": {
                        "model": "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                        "aws_access_key_id": "os.environ/AWS_KEY_EAST",
                        "aws_secret_access_key": "os.environ/AWS_SECRET_EAST",
                        "aws_session_token": "os.environ/AWS_TOKEN_EAST",
                        "aws_region_name": "us-east-1",
                    },
                },
                {
                    "model_name": "titan",
                    "litellm_params": {
                        "model": "bedrock/converse/amazon.titan-text-premier-v1:0",
                        "aws_region_name": "eu-west-1",
                    },
                },
            ]
        },
    )
    east, west = sorted(result.data["providers"], key=lambda p: p["region"], reverse=True)
    assert east["type"] == "bedrock" and east["region"] == "us-east-1"
    assert east["keys"] == [
        {
            "name": "default",
            "access_key_id": "${AWS_KEY_EAST}",
            "secret_access_key": "${AWS_SECRET_EAST}",
            "session_token": "${AWS_TOKEN_EAST}",
            "primary": True,
        }
    ]
    assert west["region"] == "eu-west-1"
    assert west["keys"][0]["access_key_id"] == "${AWS_ACCESS_KEY_ID}"
    models = {m["alias"]: m["model"] for m in result.data["mappings"]}
    assert models == {
        "claude": "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "titan": "amazon.titan-text-premier-v1:0",
    }
    assert not any("aws_" in d for d in str(result.dropped).split("'"))


def test_a_gateway_without_bedrock_never_loads_botocore() -> None:
    """botocore costs every worker ~18 MB: only a Bedrock request may import it."""
    code = (
        "import sys, django; django.setup(); import gateway.asgi; "
        "from providers.adapters import get_adapter; get_adapter('bedrock'); "
        "print('botocore' in sys.modules)"
    )
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "gateway.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
