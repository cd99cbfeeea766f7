"""UsageRecord and BudgetAlert now belong to the ``usage`` app: remove them from this state.

State only: the tables stay, ``usage.0001`` owns them under the same names. It runs first, so
the models are never missing from the state in between.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gateway", "0002_budgetalert"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="BudgetAlert"),
                migrations.DeleteModel(name="UsageRecord"),
            ],
        ),
    ]
