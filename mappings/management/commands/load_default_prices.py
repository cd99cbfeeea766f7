"""``manage.py load_default_prices``: list prices from the genai-prices catalogue for mappings."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from mappings.catalogue import catalogue_version
from mappings.services import CatalogueStatus, catalogue_prices_load


class Command(BaseCommand):
    help = (
        "Give every mapping that has no price yet its list price history from the genai-prices "
        "catalogue, looked up by the instance's provider type (or preset) and the provider "
        "model: one price row per dated catalogue period. Existing prices are never changed; "
        "running it twice adds nothing; models the catalogue does not know stay unpriced. These "
        "are list prices TO CHECK against your contract (negotiated, batch, regional and "
        "long-context prices differ); change one by adding a newer price in admin."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Show, write nothing.")
        parser.add_argument(
            "--list",
            action="store_true",
            help="Show what the catalogue says for every mapping (priced or not) and exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"] or options["list"]
        result = catalogue_prices_load(dry_run=dry_run)
        self.stdout.write(f"genai-prices {catalogue_version()}")
        if options["list"]:
            for s in result.suggestions:
                line = f"{s.mapping.model_alias} -> {s.mapping.provider_model_id}: {s.status}"
                if s.entry is not None:
                    line += f" ({s.entry.provider_id}/{s.entry.model_id})"
                self.stdout.write(line)
            return
        verb = "would add" if dry_run else "added"
        for price in result.created:
            cached = (
                f" / cached {price.cached_input_per_million}"
                if price.cached_input_per_million is not None
                else ""
            )
            self.stdout.write(
                f"{verb} {price.provider_model_id} on provider #{price.provider_id} from "
                f"{price.effective_from:%Y-%m-%d}: in {price.input_per_million} / out "
                f"{price.output_per_million}{cached} per 1M tokens"
            )
        for s in result.suggestions:
            if s.entry is not None and s.entry.notes:
                self.stdout.write(
                    f"note for {s.mapping.provider_model_id}: " + "; ".join(s.entry.notes)
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(result.created)} price(s) {verb}; {result.already_priced} mapping(s) "
                "already priced"
            )
        )
        if result.unknown:
            self.stdout.write(
                f"no list price ({CatalogueStatus.UNKNOWN_MODEL} or provider type) for: "
                + ", ".join(result.unknown)
                + " (these stay unpriced; add prices in admin)"
            )
