"""ApiToken moves here from the ``reports`` app: in the state only.

Its table keeps its name (``reports_apitoken``) and its rows; nothing touches the database but
the content type, renamed so that permissions and admin history follow the model.
``reports.0002`` removes it from the ``reports`` app's state after this has added it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ("apitoken",)


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
        ("reports", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                        ('token_prefix', models.CharField(editable=False, max_length=16)),
                        ('is_active', models.BooleanField(default=True)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'admin API token',
                        'db_table': 'reports_apitoken',
                        'ordering': ['-created_at'],
                    },
                ),
            ],
        ),
        migrations.RunPython(
            move_content_types("reports", "adminapi"), move_content_types("adminapi", "reports")
        ),
    ]
