"""List prices from the genai-prices catalogue: lookup by provider type and model, dated
periods as price history, the command and the admin's suggestion.

Expected figures are read from the catalogue itself (``genai_prices``), never copied from the
gateway's code, so a catalogue upgrade that changes a price cannot make these tests lie.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from genai_prices import data_snapshot
from genai_prices import types as gp

from gateway.usage.models import UsageRecord
from gateway.usage.recorder import usage_events_record
from mappings.catalogue import SINCE_EVER, catalogue_lookup
from mappings.models import ModelPrice, ModelProviderMapping
from mappings.services import catalogue_prices_load
from tests.admin_helpers import admin_url
from tests.factories import make_mapping_row, make_provider_row
from tests.usage.conftest import event

pytestmark = pytest.mark.django_db


def catalogue_price(provider_id: str, model: str, when: datetime | None = None) -> gp.ModelPrice:
    """The catalogue's own standard price for ``model`` at ``when`` (now by default)."""
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    return info.get_prices(when or datetime.now(tz=UTC))


def base(value: object) -> Decimal:
    return Decimal(value.base if isinstance(value, gp.TieredPrices) else value)  # type: ignore[arg-type,attr-defined]


@pytest.mark.parametrize(
    ("provider_type", "preset", "catalogue_id", "model"),
    [
        ("openai", "", "openai", "gpt-4o-mini-2024-07-18"),
        ("anthropic", "", "anthropic", "claude-sonnet-4-5-20250929"),
        ("gemini", "", "google", "gemini-2.5-flash"),
        ("bedrock", "", "aws", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("azure_openai", "", "azure", "gpt-4o"),
        ("openai_compatible", "groq", "groq", "llama-3.3-70b-versatile"),
    ],
)
def test_known_models_get_the_catalogues_current_price(
    provider_type: str, preset: str, catalogue_id: str, model: str
) -> None:
    provider = make_provider_row(provider_type=provider_type, preset=preset)
    make_mapping_row(provider, alias="m", model=model)

    catalogue_prices_load()

    row = ModelPrice.objects.filter(provider=provider, provider_model_id=model).first()
    assert row is not None
    expected = catalogue_price(catalogue_id, model)
    assert row.input_per_million == base(expected.input_mtok)
    assert row.output_per_million == base(expected.output_mtok)
    if expected.cache_read_mtok is None:
        assert row.cached_input_per_million is None
    else:
        assert row.cached_input_per_million == base(expected.cache_read_mtok)


def test_a_dated_price_change_becomes_two_history_rows() -> None:
    """o3's list price was cut on 2025-06-10: the history has both, each from its date."""
    provider = make_provider_row(provider_type="openai")
    make_mapping_row(provider, alias="reasoner", model="o3")

    catalogue_prices_load()

    rows = list(ModelPrice.objects.filter(provider=provider).order_by("effective_from"))
    assert [r.effective_from for r in rows] == [SINCE_EVER, datetime(2025, 6, 10, tzinfo=UTC)]
    before = catalogue_price("openai", "o3", datetime(2025, 1, 1, tzinfo=UTC))
    after = catalogue_price("openai", "o3", datetime(2025, 7, 1, tzinfo=UTC))
    assert (rows[0].input_per_million, rows[0].output_per_million) == (
        base(before.input_mtok),
        base(before.output_mtok),
    )
    assert (rows[1].input_per_million, rows[1].output_per_million) == (
        base(after.input_mtok),
        base(after.output_mtok),
    )
    assert rows[0].input_per_million != rows[1].input_per_million


def test_unknown_model_and_unpriced_types_stay_null_never_zero() -> None:
    openai = make_provider_row(provider_type="openai")
    ollama = make_provider_row(provider_type="ollama")
    vllm = make_provider_row(provider_type="openai_compatible", preset="vllm")
    finetune = make_mapping_row(openai, alias="ft", model="my-finetune-2025")
    make_mapping_row(ollama, alias="local", model="llama3")
    make_mapping_row(vllm, alias="self", model="llama-3.3-70b-versatile")

    result = catalogue_prices_load()

    assert result.created == []
    assert not ModelPrice.objects.exists()
    assert set(result.unknown) == {"my-finetune-2025", "llama3", "llama-3.3-70b-versatile"}
    e = event(
        provider_id=openai.pk,
        mapping_id=finetune.pk,
        provider_model="my-finetune-2025",
        prompt_tokens=1000,
        completion_tokens=10,
    )
    usage_events_record(events=[e.to_dict()])
    assert UsageRecord.objects.get(request_id=e.request_id).cost is None


def test_loading_is_idempotent_conservative_and_dry_run_writes_nothing() -> None:
    provider = make_provider_row(provider_type="anthropic")
    make_mapping_row(provider, alias="haiku", model="claude-haiku-4-5")
    mine = make_mapping_row(provider, alias="sonnet", model="claude-sonnet-4-5")
    own = ModelPrice.objects.create(
        mapping=mine, input_per_million=Decimal(9), output_per_million=Decimal(9)
    )

    dry = catalogue_prices_load(dry_run=True)
    assert len(dry.created) == 1 and not ModelPrice.objects.exclude(pk=own.pk).exists()

    first = catalogue_prices_load()
    assert [p.provider_model_id for p in first.created] == ["claude-haiku-4-5"]
    assert first.already_priced == 1
    own.refresh_from_db()
    assert own.input_per_million == Decimal(9)
    count = ModelPrice.objects.count()
    second = catalogue_prices_load()
    assert second.created == [] and ModelPrice.objects.count() == count


def test_two_mappings_of_one_target_share_its_rows() -> None:
    provider = make_provider_row(provider_type="openai")
    make_mapping_row(provider, alias="a", model="gpt-4o")
    make_mapping_row(provider, alias="b", model="gpt-4o")
    catalogue_prices_load()
    assert ModelPrice.objects.filter(provider=provider, provider_model_id="gpt-4o").count() == 1


def test_tiers_take_the_base_price_and_say_so() -> None:
    entry = catalogue_lookup(
        provider_type="anthropic", preset="", provider_model="claude-sonnet-4-5"
    )
    assert entry is not None
    expected = catalogue_price("anthropic", "claude-sonnet-4-5")
    assert isinstance(expected.input_mtok, gp.TieredPrices)
    assert entry.periods[-1].input == expected.input_mtok.base
    assert any("tier" in note for note in entry.notes)


def test_command_reports_what_it_added_and_what_stays_unpriced() -> None:
    provider = make_provider_row(provider_type="openai")
    make_mapping_row(provider, alias="mini", model="gpt-4o-mini")
    make_mapping_row(provider, alias="ft", model="my-finetune")
    out = io.StringIO()
    call_command("load_default_prices", stdout=out)
    text = out.getvalue()
    assert "genai-prices" in text
    assert "added gpt-4o-mini" in text
    assert "my-finetune" in text and "stay unpriced" in text
    assert ModelPrice.objects.filter(provider_model_id="gpt-4o-mini").exists()


def test_admin_suggestion_shows_then_adds_on_confirm(admin_client: Client) -> None:
    provider = make_provider_row(provider_type="openai", name="openai-prod")
    mapping = make_mapping_row(provider, alias="reasoner", model="o3")
    change = admin_client.get(admin_url(ModelProviderMapping, "change", mapping.pk)).content
    suggest_url = f"/admin/mappings/modelprovidermapping/{mapping.pk}/catalogue-price/"
    assert suggest_url.encode() in change

    page = admin_client.get(suggest_url).content.decode()
    assert "openai/o3" in page and "2025-06-10" in page
    assert not ModelPrice.objects.exists()  # GET writes nothing

    response = admin_client.post(
        admin_url(ModelProviderMapping, "changelist"),
        {"action": "add_catalogue_prices", "_selected_action": [mapping.pk], "confirm": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert ModelPrice.objects.filter(provider=provider, provider_model_id="o3").count() == 2
    assert "2 price(s) added" in response.content.decode()


def test_admin_suggestion_needs_the_permission_to_add_prices(client: Client) -> None:
    provider = make_provider_row(provider_type="openai")
    mapping = make_mapping_row(provider, alias="mini", model="gpt-4o-mini")
    user = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_modelprovidermapping"),
        Permission.objects.get(codename="change_modelprovidermapping"),
    )
    client.force_login(user)
    suggest_url = f"/admin/mappings/modelprovidermapping/{mapping.pk}/catalogue-price/"
    assert client.get(suggest_url).status_code == 403
    change = client.get(admin_url(ModelProviderMapping, "change", mapping.pk)).content
    assert suggest_url.encode() not in change
    client.post(
        admin_url(ModelProviderMapping, "changelist"),
        {"action": "add_catalogue_prices", "_selected_action": [mapping.pk], "confirm": "yes"},
    )
    assert not ModelPrice.objects.exists()
