"""TimelineEvent moves to the ``timeline`` app (``timeline/migrations/0001_initial.py``): only Django's idea of
the model leaves ``tickets``; the table ``tickets_timelineevent``, its rows and its indexes stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0005_queue_search'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='TimelineEvent',
                ),
            ],
            database_operations=[],
        ),
    ]
