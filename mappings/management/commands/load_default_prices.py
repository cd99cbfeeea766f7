"""``manage.py load_default_prices``: seed list prices for mappings of well-known models."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from mappings.services import DEFAULT_PRICES, default_prices_load


class Command(BaseCommand):
    help = (
        "Add a default price (public 2025 list price, USD per 1M tokens) for every mapping whose "
        "provider model is a well-known model (gpt-4o, gpt-4.1, o3-mini, claude-sonnet-4-5, "
        "text-embedding-3-small, ...) and that has no price yet. Existing prices are never "
        "changed; running it twice adds nothing. These are DEFAULTS TO CHECK against your "
        "contract (negotiated, batch, regional and long-context prices differ); edit them by "
        "adding a newer price in admin."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Show, write nothing.")
        parser.add_argument(
            "--list", action="store_true", help="Print the default price table and exit."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for name, default in sorted(DEFAULT_PRICES.items()):
                cached = default.cached_input if default.cached_input is not None else "-"
                self.stdout.write(
                    f"{name:28} in {default.input:>7} out {default.output:>7} cached {cached}"
                )
            return
        result = default_prices_load(dry_run=options["dry_run"])
        verb = "would add" if options["dry_run"] else "added"
        for price in result.created:
            self.stdout.write(
                f"{verb} {price.provider_model_id} on provider #{price.provider_id}: "
                f"in {price.input_per_million} / out {price.output_per_million}"
                + (
                    f" / cached {price.cached_input_per_million}"
                    if price.cached_input_per_million is not None
                    else ""
                )
                + " per 1M tokens"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(result.created)} price(s) {verb}; {result.already_priced} mapping(s) "
                "already priced"
            )
        )
        if result.unknown:
            self.stdout.write(
                "no default price for: " + ", ".join(result.unknown) + " (add them in admin)"
            )
