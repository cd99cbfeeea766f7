"""ApiToken now belongs to the ``adminapi`` app: remove it from the ``reports`` state.

State only: the table stays, ``adminapi.0001`` owns it under the same name. It runs first, so
the model is never missing from the state in between.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0001_initial"),
        ("adminapi", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
            ],
        ),
    ]
