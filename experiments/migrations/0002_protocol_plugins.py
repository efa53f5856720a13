"""2-AFC moves behind the protocol interface: its study fields become `params`, the answer key
moves to SessionTrial.key and answers to Response.answer. Existing rows are carried over."""

from django.db import migrations, models

# The 2-AFC columns of Study that become its protocol parameters.
TWO_AFC_PARAMS = (
    "difficulty", "references_per_side", "prompt", "n_practice_obvious", "practice_less_obvious_difficulty",
    "min_catch_correct", "min_position_count",
)


def to_protocol_shape(apps, schema_editor):
    Study = apps.get_model("experiments", "Study")
    SessionTrial = apps.get_model("experiments", "SessionTrial")
    Response = apps.get_model("experiments", "Response")
    for study in Study.objects.all():
        study.params = {name: getattr(study, name) for name in TWO_AFC_PARAMS}
        study.save(update_fields=["params"])
    for planned in SessionTrial.objects.exclude(correct_choice=None).iterator():
        planned.key = {"choice": planned.correct_choice}
        planned.save(update_fields=["key"])
    for response in Response.objects.iterator():
        response.answer = {"choice": response.choice, "confidence": response.confidence}
        response.score = None if response.correct is None else float(response.correct)
        response.save(update_fields=["answer", "score"])


def to_columns(apps, schema_editor):
    Study = apps.get_model("experiments", "Study")
    SessionTrial = apps.get_model("experiments", "SessionTrial")
    Response = apps.get_model("experiments", "Response")
    for study in Study.objects.all():
        for name in TWO_AFC_PARAMS:
            if name in study.params:
                setattr(study, name, study.params[name])
        study.save()
    for planned in SessionTrial.objects.iterator():
        planned.correct_choice = planned.key.get("choice")
        planned.save(update_fields=["correct_choice"])
    for response in Response.objects.iterator():
        response.choice = response.answer.get("choice")
        response.confidence = response.answer.get("confidence")
        response.save(update_fields=["choice", "confidence"])


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='response',
            name='answer',
            field=models.JSONField(default=dict, help_text="The answer's fields, as the protocol validated them."),
        ),
        migrations.AddField(
            model_name='sessiontrial',
            name='key',
            field=models.JSONField(blank=True, default=dict, help_text="The protocol's answer key; never sent to the browser."),
        ),
        migrations.AddField(
            model_name='study',
            name='params',
            field=models.JSONField(blank=True, default=dict, help_text="The protocol's own parameters; missing ones take their defaults."),
        ),
        migrations.RunPython(to_protocol_shape, to_columns),
    ]
