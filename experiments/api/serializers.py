"""Input and output shapes of the participant API (they also make the OpenAPI schema)."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from experiments.models import Event
from experiments.recruiters import recruiter_choices, registered

MAX_PAYLOAD_BYTES = 4096
MAX_RT_MS = 24 * 3600 * 1000


class SessionStartSerializer(serializers.Serializer):
    """The study, the recruiter the participant comes from, and the fields its study link brings."""

    study = serializers.SlugField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # From the registry, which fills when Django is ready: that may come after this module is imported.
        self.fields["source"] = serializers.ChoiceField(choices=recruiter_choices())
        for recruiter in registered():
            for field, param in recruiter.url_params.items():
                help_text = f"{recruiter.name}: the {param} parameter of the study link"
                self.fields[field] = serializers.CharField(required=False, help_text=help_text)


class TimingSerializer(serializers.Serializer):
    lock_ms = serializers.IntegerField()
    feedback_delay_ms = serializers.IntegerField()
    feedback_ms = serializers.IntegerField()


class SessionStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    stage = serializers.ChoiceField(choices=["consent", "instructions", "trials", "feedback", "done"])
    phase = serializers.ChoiceField(choices=["practice", "main"])
    practice_attempts = serializers.IntegerField()
    trials_per_session = serializers.IntegerField()
    n_practice_trials = serializers.IntegerField()
    prompt = serializers.CharField()
    min_instruction_s = serializers.FloatField()
    timing = TimingSerializer()
    hand_back = serializers.DictField(required=False)


class SessionStartedSerializer(SessionStateSerializer):
    token = serializers.CharField()


class ReferencesSerializer(serializers.Serializer):
    min = serializers.ListField(child=serializers.CharField())
    max = serializers.ListField(child=serializers.CharField())


class TrialSerializer(serializers.Serializer):
    done = serializers.BooleanField()
    index = serializers.IntegerField(required=False)
    phase = serializers.ChoiceField(choices=["practice", "main"], required=False)
    attempt = serializers.IntegerField(required=False)
    position = serializers.IntegerField(required=False, help_text="1-based, within the round.")
    of = serializers.IntegerField(required=False, help_text="Trials in the round.")
    references = ReferencesSerializer(required=False)
    queries = serializers.ListField(child=serializers.CharField(), required=False)
    preload = serializers.ListField(child=serializers.CharField(), required=False)


class AnswerSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0)
    choice = serializers.IntegerField(min_value=0, max_value=1, help_text="0 upper, 1 lower query.")
    confidence = serializers.IntegerField(min_value=1, max_value=3)
    rt_ms = serializers.IntegerField(min_value=0, max_value=MAX_RT_MS)
    client_id = serializers.UUIDField(help_text="Made once per answer; a retry reuses it.")


class AnswerResultSerializer(serializers.Serializer):
    correct = serializers.BooleanField(allow_null=True)
    index = serializers.IntegerField()
    done = serializers.BooleanField()
    practice = serializers.DictField(allow_null=True)


class EventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Event.Type.choices)
    payload = serializers.DictField(required=False, default=dict)

    def validate_payload(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError(f"at most {MAX_PAYLOAD_BYTES} bytes of JSON")
        return value


class EventRecordedSerializer(serializers.Serializer):
    type = serializers.CharField()
    created_at = serializers.DateTimeField()


class CompleteSerializer(serializers.Serializer):
    feedback = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class CompletedSerializer(serializers.Serializer):
    completed = serializers.BooleanField()
    completion_code = serializers.CharField(required=False)
    submit_url = serializers.CharField(required=False)
    fields = serializers.DictField(required=False)
    redirect_url = serializers.CharField(required=False)
