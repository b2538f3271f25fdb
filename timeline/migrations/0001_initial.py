"""TimelineEvent, moved here from ``tickets`` (``tickets/migrations/0006_delete_timelineevent.py``) as state only:
the model keeps the table ``tickets_timelineevent`` and the index names it had, so ``migrate`` on an existing
database changes nothing, and a new database gets the table from ``tickets``' own migrations."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('customers', '0003_customer_activity_index'),
        ('tickets', '0006_delete_timelineevent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='TimelineEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(choices=[('ticket_created', 'Ticket created'), ('status_changed', 'Status changed'), ('reopened', 'Reopened'), ('assigned', 'Assigned'), ('team_changed', 'Team changed'), ('priority_changed', 'Priority changed'), ('tags_changed', 'Tags changed'), ('subject_changed', 'Subject changed'), ('note_added', 'Note added'), ('follow_up_created', 'Follow-up ticket created'), ('delivery_failed', 'Delivery failed'), ('ticket_merged', 'Ticket merged'), ('customer_merged', 'Customer merged'), ('customer_merge_undone', 'Customer merge undone'), ('agent_mentioned', 'Agent mentioned'), ('identity_added', 'Identity added'), ('sms_opted_out', 'Opted out of SMS'), ('sms_opted_in', 'Opted back in to SMS')], max_length=32)),
                        ('actor_kind', models.CharField(choices=[('agent', 'Agent'), ('customer', 'Customer'), ('system', 'System'), ('integration', 'Integration')], max_length=16)),
                        ('params', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='timeline_events', to='customers.customer')),
                        ('ticket', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='timeline_events', to='tickets.ticket')),
                    ],
                    options={
                        'db_table': 'tickets_timelineevent',
                        'indexes': [models.Index(fields=['customer', '-created_at', '-id'], name='timeline_event_customer_idx'), models.Index(fields=['ticket', 'created_at'], name='timeline_event_ticket_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
