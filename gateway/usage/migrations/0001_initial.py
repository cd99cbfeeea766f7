"""UsageRecord and BudgetAlert move here from the ``gateway`` app: in the state only.

Their tables keep their names (``db_table``) and their rows; nothing touches the database but
the content types, renamed so that permissions and admin history follow the models.
``gateway.0003`` removes them from the ``gateway`` app's state after this has added them.
"""

import django.db.models.deletion
from django.db import migrations, models

MODELS = ("usagerecord", "budgetalert")


def move_content_types(old_label, new_label):
    """A RunPython function renaming this migration's models' content types."""

    def run(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        objects = content_type.objects.db_manager(schema_editor.connection.alias)
        for model in MODELS:
            # Already there when post_migrate created it first: keep it, leave the old one.
            if not objects.filter(app_label=new_label, model=model).exists():
                objects.filter(app_label=old_label, model=model).update(app_label=new_label)
        objects.clear_cache()

    return run


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("gateway", "0002_budgetalert"),
        ("mappings", "0001_initial"),
        ("providers", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='BudgetAlert',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('daily', 'Daily'), ('monthly', 'Monthly'), ('total', 'Total (lifetime)')], max_length=16)),
                        ('period_start', models.DateTimeField(help_text='UTC start of the budget period.')),
                        ('kind', models.CharField(choices=[('threshold', 'Threshold reached'), ('exceeded', 'Budget exceeded')], max_length=16)),
                        ('spend', models.DecimalField(decimal_places=10, max_digits=20)),
                        ('budget_amount', models.DecimalField(decimal_places=2, max_digits=14)),
                        ('threshold', models.DecimalField(decimal_places=3, max_digits=4)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('delivery_error', models.TextField(blank=True)),
                        ('virtual_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='budget_alerts', to='gateway.virtualkey')),
                    ],
                    options={
                        'db_table': 'gateway_budgetalert',
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('virtual_key', 'period_start', 'kind'), name='uniq_budget_alert_period_kind')],
                    },
                ),
                migrations.CreateModel(
                    name='UsageRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('request_id', models.CharField(max_length=64, unique=True)),
                        ('created_at', models.DateTimeField(db_index=True)),
                        ('endpoint', models.CharField(max_length=32)),
                        ('model_alias', models.CharField(blank=True, max_length=200)),
                        ('account_group', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('provider_model', models.CharField(blank=True, max_length=200)),
                        ('stream', models.BooleanField(default=False)),
                        ('status_code', models.PositiveSmallIntegerField()),
                        ('error_type', models.CharField(blank=True, max_length=64)),
                        ('prompt_tokens', models.PositiveIntegerField(default=0)),
                        ('completion_tokens', models.PositiveIntegerField(default=0)),
                        ('cached_tokens', models.PositiveIntegerField(default=0)),
                        ('latency_ms', models.FloatField(default=0)),
                        ('ttft_ms', models.FloatField(blank=True, null=True)),
                        ('attempts', models.JSONField(blank=True, default=list)),
                        ('cost', models.DecimalField(blank=True, decimal_places=10, max_digits=18, null=True)),
                        ('mapping', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='mappings.modelprovidermapping')),
                        ('provider', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='providers.provider')),
                        ('provider_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='providers.providerkeycredential')),
                        ('virtual_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='gateway.virtualkey')),
                    ],
                    options={
                        'db_table': 'gateway_usagerecord',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['provider', 'created_at'], name='usage_provider_time'), models.Index(fields=['virtual_key', 'created_at'], name='usage_vkey_time')],
                    },
                ),
            ],
        ),
        migrations.RunPython(
            move_content_types("gateway", "usage"), move_content_types("usage", "gateway")
        ),
    ]
