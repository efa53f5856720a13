"""Two indexes fewer to write on every answer and planned trial, and served-at writes that stay on their page.

A session's trials and answers are looked up by session through the unique (session, index) and (session,
client_id) indexes, whose first column is the session: the foreign keys' own indexes only cost writes. A
trial fetch rewrites its trial's `served_at`; with room left on each page (PostgreSQL's fillfactor), the new
row version stays on the page and no index is written (a heap-only update).
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

TRIAL_PAGE_FILL = 80  # percent; trials are written once, planned, then rewritten by each fetch


def leave_room_on_trial_pages(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE experiments_sessiontrial SET (fillfactor = {TRIAL_PAGE_FILL})")


def fill_trial_pages(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE experiments_sessiontrial RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0019_session_next_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="response",
            name="session",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="experiments.session",
            ),
        ),
        migrations.AlterField(
            model_name="sessiontrial",
            name="session",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="session_trials",
                to="experiments.session",
            ),
        ),
        migrations.RunPython(leave_room_on_trial_pages, fill_trial_pages),
    ]
