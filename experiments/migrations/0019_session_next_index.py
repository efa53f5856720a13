from typing import Any

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def start_after_answered(apps: Any, schema_editor: Any) -> None:
    """Sessions under way go on from their last answered trial (answers come in index order)."""
    Session = apps.get_model("experiments", "Session")
    SessionTrial = apps.get_model("experiments", "SessionTrial")
    last_answered = (
        SessionTrial.objects.filter(session_id=OuterRef("pk"), response__isnull=False)
        .order_by()
        .values("session_id")
        .annotate(last=Max("index"))
        .values("last")
    )
    Session.objects.update(next_index=Coalesce(Subquery(last_answered) + 1, Value(0)))


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0018_practice_choice"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="next_index",
            field=models.PositiveIntegerField(
                default=0,
                help_text="The index of the first unanswered trial: every trial before it is answered.",
            ),
        ),
        migrations.RunPython(start_after_answered, migrations.RunPython.noop),
    ]
