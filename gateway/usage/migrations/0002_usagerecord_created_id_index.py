"""Keyset index for the request log: newest first by (created_at, id), one index range scan per
page however many records there are."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(fields=["created_at", "id"], name="usage_time_id"),
        ),
    ]
