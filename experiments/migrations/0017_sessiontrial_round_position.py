from typing import Any

from django.db import migrations, models
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber


def number_rounds(apps: Any, schema_editor: Any) -> None:
    """Trials planned before this migration get their place in their round (session, phase, attempt)."""
    SessionTrial = apps.get_model("experiments", "SessionTrial")
    by_round = [F("session_id"), F("phase"), F("attempt")]
    places = SessionTrial.objects.annotate(
        place=Window(RowNumber(), partition_by=by_round, order_by=F("index").asc()),
        length=Window(Count("pk"), partition_by=by_round),
    ).values_list("pk", "place", "length")
    rows = [SessionTrial(pk=pk, position=place, round_length=length) for pk, place, length in places]
    SessionTrial.objects.bulk_update(rows, ["position", "round_length"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0016_size_calibration_and_window_pauses"),
    ]

    operations = [
        migrations.AddField(
            model_name="sessiontrial",
            name="position",
            field=models.PositiveIntegerField(default=1, help_text="Its place in its round, from 1."),
        ),
        migrations.AddField(
            model_name="sessiontrial",
            name="round_length",
            field=models.PositiveIntegerField(default=1, help_text="How many trials its round has."),
        ),
        migrations.RunPython(number_rounds, migrations.RunPython.noop),
    ]
