"""Indexes for the console's queues and search (tickets.selectors.queues, tickets.selectors.search), PostgreSQL only.

Written as SQL because Django's model indexes cannot say all of it (GIN over ``to_tsvector`` with a fixed
configuration, partial indexes over an expression in DESC order), and only on PostgreSQL: SQLite searches by
substring and has no GIN. The expressions must stay exactly those of the selectors, or the planner ignores them:
``COALESCE(last_message_at, created_at)`` (last activity) and ``to_tsvector('simple'::regconfig, <column>)``.

Plain CREATE INDEX, not CONCURRENTLY: a migration runs in a transaction, where CONCURRENTLY is refused. On a large
live table, create them by hand with CONCURRENTLY first (same names, IF NOT EXISTS makes this migration a no-op).
"""

from django.db import migrations

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
ACTIVITY = "(COALESCE(last_message_at, created_at)) DESC, id DESC"

INDEXES = {
    # Every active queue (open, pending, unassigned, my teams, SLA at risk) walks this in order.
    "ticket_active_activity_idx": (
        f"ON tickets_ticket ({ACTIVITY}) WHERE merged_into_id IS NULL AND {ACTIVE}"
    ),
    # "Mine": one agent's active tickets, in order.
    "ticket_assignee_activity_idx": (
        f"ON tickets_ticket (assignee_id, {ACTIVITY}) WHERE merged_into_id IS NULL AND {ACTIVE}"
    ),
    # "Unassigned": the queue agents watch most, usually a small part of the active tickets.
    "ticket_unassigned_activity_idx": (
        f"ON tickets_ticket ({ACTIVITY}) WHERE merged_into_id IS NULL AND assignee_id IS NULL AND {ACTIVE}"
    ),
    # "All tickets" (solved and closed too), mostly used with a search.
    "ticket_activity_idx": f"ON tickets_ticket ({ACTIVITY}) WHERE merged_into_id IS NULL",
    "ticket_subject_search_idx": "ON tickets_ticket USING gin (to_tsvector('simple'::regconfig, subject))",
    "message_text_search_idx": "ON tickets_message USING gin (to_tsvector('simple'::regconfig, text))",
    "customer_name_search_idx": "ON customers_customer USING gin (to_tsvector('simple'::regconfig, name))",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0004_console"),
        ("customers", "0002_console"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
