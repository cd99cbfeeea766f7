"""Booleans as the schema says: ``true``/``false`` only.

DRF's ``BooleanField`` also takes ``"0"``, ``"no"``, ``1`` ... from a JSON body, and
django-filter's boolean filter silently ignores a value it cannot read (``?is_enabled=maybe``
lists everything). Both answer something other than what was asked; here they are a 400.
Form posts (the browsable API) still send ``"true"``/``"on"`` strings, which are read as DRF
reads them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.http import QueryDict
from django_filters import filters
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS, FilterSet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

_QUERY_BOOLEANS = {"true": True, "false": False, "True": True, "False": False}


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true``/``false``; form data as DRF reads it."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool) or isinstance(
            getattr(self.root, "initial_data", None), QueryDict
        ):
            return super().to_internal_value(data)
        self.fail("invalid", input=data)
        raise AssertionError  # fail() raises


class StrictModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: StrictBooleanField,
    }


class _BooleanChoice(forms.Field):
    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value not in _QUERY_BOOLEANS:
            raise forms.ValidationError("must be true or false", code="invalid")
        return _QUERY_BOOLEANS[value]


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = _BooleanChoice


class StrictFilterSet(FilterSet):
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter with :class:`StrictFilterSet` (an unreadable filter value is a 400)."""

    filterset_base = StrictFilterSet
