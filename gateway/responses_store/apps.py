"""The Responses API's response store (``previous_response_id``, ``GET``/``DELETE
/v1/responses/{id}``) for instances served through chat completions.

A Django app of its own (label ``responses_store``): conversation state is neither usage
accounting nor key configuration, it has its own lifecycle (a TTL, pruning), and its one table
and migrations stay clear of the other apps' (which are being reorganised).
"""

from __future__ import annotations

from django.apps import AppConfig


class ResponsesStoreConfig(AppConfig):
    name = "gateway.responses_store"
    label = "responses_store"
    verbose_name = "Responses API store"
    default_auto_field = "django.db.models.BigAutoField"
