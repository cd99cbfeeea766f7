"""Admin REST API viewsets (staff with model permissions: session or ``Bearer gwat_...`` token).

Permissions are Django's per-model view/add/change/delete, as in the admin
(:mod:`gateway.adminapi.permissions`).

Thin: serializers parse and render, services validate (model ``clean()`` + ``${VAR}`` checks,
as admin and import do) and save; saves bump the configuration version. Provider instances and
keys are written, and deleted, through ``providers.services`` like everywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models, transaction
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from gateway.adminapi import serializers as s
from gateway.adminapi.errors import provider_invalid_detail
from gateway.adminapi.history import api_history, with_history
from gateway.adminapi.services import config_object_save, provider_key_upsert, provider_upsert
from gateway.keys.models import VirtualKey
from gateway.keys.services import virtual_key_create, virtual_key_rotate
from mappings.models import ModelPrice, ModelProviderMapping
from mappings.services import model_price_delete
from providers.models import Provider, ProviderKeyCredential
from providers.secrets import tolerant_decryption
from providers.services import ProviderInvalid, provider_delete, provider_key_delete


class CleanSaveMixin:
    """Create/update through :func:`config_object_save` instead of ``Model.objects.create``."""

    def _save(self, serializer: BaseSerializer[Any], obj: models.Model) -> None:
        with transaction.atomic():
            serializer.instance = config_object_save(
                obj=obj, values=dict(serializer.validated_data)
            )

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        self._save(serializer, self.get_serializer_class().Meta.model())  # type: ignore[attr-defined]

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        assert serializer.instance is not None
        self._save(serializer, serializer.instance)


class TolerantDecryptionMixin:
    """Reads a key no ``FIELD_ENCRYPTION_KEYS`` entry decrypts as "(cannot decrypt)" instead of
    failing the whole answer: one bad row must not hide every instance from staff."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with tolerant_decryption():
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


@with_history
class ProviderViewSet(TolerantDecryptionMixin, viewsets.ModelViewSet):
    """Provider instances with their keys nested (``api_key`` write-only)."""

    queryset = Provider.objects.prefetch_related("keys").order_by("name")
    serializer_class = s.ProviderSerializer
    filterset_fields = ["provider_type", "is_enabled", "name"]

    def _save(self, serializer: BaseSerializer[Any], provider: Provider) -> None:
        values = dict(serializer.validated_data)
        keys = values.pop("keys", None)
        saved = provider_upsert(provider=provider, values=values, keys=keys)
        # Re-read: the nested keys must show what was stored, not a stale prefetch.
        serializer.instance = Provider.objects.prefetch_related("keys").get(pk=saved.pk)

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        self._save(serializer, Provider())

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        assert isinstance(serializer.instance, Provider)
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance: Provider) -> None:
        provider_delete(provider=instance)


@with_history
class ProviderKeyViewSet(TolerantDecryptionMixin, viewsets.ModelViewSet):
    """Keys of provider instances (filter with ``?provider=ID``); ``api_key`` write-only."""

    queryset = ProviderKeyCredential.objects.select_related("provider").order_by("provider", "id")
    serializer_class = s.ProviderKeySerializer
    filterset_fields = ["provider", "is_enabled", "is_primary", "account_group"]

    def _save(self, serializer: BaseSerializer[Any], key: ProviderKeyCredential) -> None:
        try:
            provider_key_upsert(key=key, values=dict(serializer.validated_data))
        except ProviderInvalid as exc:
            # One key on its own: its fields are the request's fields.
            raise exceptions.ValidationError(
                provider_invalid_detail(exc, nested_keys=False)
            ) from exc
        serializer.instance = key

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        self._save(serializer, ProviderKeyCredential())

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        assert isinstance(serializer.instance, ProviderKeyCredential)
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance: ProviderKeyCredential) -> None:
        provider_key_delete(key=instance)


@with_history
class MappingViewSet(CleanSaveMixin, viewsets.ModelViewSet):
    """Model alias -> provider instance mappings."""

    queryset = ModelProviderMapping.objects.select_related("provider").order_by(
        "model_alias", "priority", "id"
    )
    serializer_class = s.MappingSerializer
    filterset_fields = ["model_alias", "provider", "is_enabled"]


@with_history
class PriceViewSet(CleanSaveMixin, viewsets.ModelViewSet):
    """Prices per million tokens (a price in effect cannot change history; add a new one)."""

    queryset = ModelPrice.objects.order_by("-effective_from", "-id")
    serializer_class = s.PriceSerializer
    filterset_fields = ["mapping", "provider", "provider_model_id"]

    def perform_destroy(self, instance: ModelPrice) -> None:
        # A price in effect is history: refused (409), only a scheduled one is deleted.
        model_price_delete(price=instance)


@with_history
class VirtualKeyViewSet(
    CleanSaveMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Apps' virtual keys. Create returns the plaintext key once; rotate; disable."""

    queryset = VirtualKey.objects.order_by("name")
    serializer_class = s.VirtualKeySerializer
    filterset_fields = ["name", "is_enabled"]
    # POSTs that change a stored key: the "change" permission, not "add".
    action_permissions = {"rotate": "change", "disable": "change"}

    @extend_schema(request=s.VirtualKeySerializer, responses={201: s.VirtualKeyCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = s.VirtualKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vkey, plaintext = virtual_key_create(**serializer.validated_data)
        api_history(self, vkey, "added")
        out = s.VirtualKeyCreatedSerializer(vkey).data
        out["key"] = plaintext
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RotateKeySerializer, responses=s.RotatedKeySerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        vkey = self.get_object()
        params = s.RotateKeySerializer(data=request.data)
        params.is_valid(raise_exception=True)
        grace = timedelta(seconds=params.validated_data["grace_seconds"])
        plaintext = virtual_key_rotate(vkey=vkey, grace=grace)
        api_history(self, vkey, "changed", ["key (rotated)"])
        return Response(
            {
                "id": vkey.pk,
                "key_prefix": vkey.key_prefix,
                "key": plaintext,
                "previous_key_expires_at": vkey.previous_key_expires_at,
            }
        )

    @extend_schema(request=None, responses=s.VirtualKeySerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        vkey = self.get_object()
        config_object_save(obj=vkey, values={"is_enabled": False})
        api_history(self, vkey, "changed", ["is_enabled"])
        return Response(s.VirtualKeySerializer(vkey).data)


class UnknownPath(APIView):
    """Anything under ``/api/`` no route matches (an id with a dot, a typo): the API's JSON
    404 after authentication, instead of Django's HTML page."""

    schema = None  # not an operation

    def _missing(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise exceptions.NotFound(f"no such API path: {request.path}")

    get = post = put = patch = delete = _missing
