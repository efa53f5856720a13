"""Input and output shapes of the participant API (they also make the OpenAPI schema)."""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

import protocols
from experiments.models import MAX_PX_PER_MM, MIN_PX_PER_MM, Event
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
                # min_length states in the schema what allow_blank=False already refuses.
                self.fields[field] = serializers.CharField(required=False, min_length=1, help_text=help_text)


class TimingSerializer(serializers.Serializer):
    lock_ms = serializers.IntegerField()
    feedback_delay_ms = serializers.IntegerField()
    feedback_ms = serializers.IntegerField()


class CalibrationStateSerializer(serializers.Serializer):
    image_size_mm = serializers.FloatField(help_text="The side each unit image is shown at, in millimetres.")
    px_per_mm = serializers.FloatField(
        allow_null=True, help_text="CSS pixels per millimetre of the session's screen; null until calibrated."
    )
    min_px_per_mm = serializers.FloatField()
    max_px_per_mm = serializers.FloatField()


class SessionStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    protocol = serializers.CharField(help_text="The study's protocol: which trial module the page runs.")
    stage = serializers.ChoiceField(choices=["consent", "instructions", "trials", "feedback", "done"])
    phase = serializers.ChoiceField(choices=["practice", "main"])
    practice_attempts = serializers.IntegerField()
    trials_per_session = serializers.IntegerField()
    n_practice_trials = serializers.IntegerField()
    prompt = serializers.CharField()
    min_instruction_s = serializers.FloatField()
    main_feedback = serializers.BooleanField(
        help_text="Whether replies to main-block answers say if they were right (practice answers' always do)."
    )
    enforce_instruction_time = serializers.BooleanField(
        help_text="Whether the page holds the start button for min_instruction_s (otherwise it only measures)."
    )
    timing = TimingSerializer()
    calibration = CalibrationStateSerializer(
        allow_null=True, help_text="The size calibration, where the study has one (calibrate_size); else null."
    )
    hand_back = serializers.DictField(required=False)


class SessionStartedSerializer(SessionStateSerializer):
    token = serializers.CharField()


class TrialEnvelopeSerializer(serializers.Serializer):
    """The fields of every protocol's trial payload; the protocol's own come beside them."""

    done = serializers.BooleanField()
    protocol = serializers.CharField()
    index = serializers.IntegerField(required=False)
    phase = serializers.ChoiceField(choices=["practice", "main"], required=False)
    attempt = serializers.IntegerField(required=False)
    position = serializers.IntegerField(required=False, help_text="1-based, within the round.")
    of = serializers.IntegerField(required=False, help_text="Trials in the round.")
    preload = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="The next trial's images."
    )


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value)) > MAX_PAYLOAD_BYTES:
        raise serializers.ValidationError(f"at most {MAX_PAYLOAD_BYTES} bytes of JSON")
    return value


class AnswerEnvelopeSerializer(serializers.Serializer):
    """The fields of every answer; the protocol's own come beside them."""

    index = serializers.IntegerField(min_value=0)
    rt_ms = serializers.IntegerField(min_value=0, max_value=MAX_RT_MS)
    client_id = serializers.UUIDField(help_text="Made once per answer; a retry reuses it.")
    geometry = serializers.DictField(
        required=False,
        default=dict,
        help_text="The window, screen, devicePixelRatio, zoom, user agent and the images' rendered sizes.",
    )

    def validate_geometry(self, value: dict[str, Any]) -> dict[str, Any]:
        return _small_json(value)


class AnswerResultSerializer(serializers.Serializer):
    correct = serializers.BooleanField(allow_null=True)
    index = serializers.IntegerField()
    done = serializers.BooleanField()
    practice = serializers.DictField(allow_null=True)


def _protocol_variant(
    envelope: type[serializers.Serializer], own: type[serializers.Serializer], protocol: str, what: str
) -> type[serializers.Serializer]:
    """The envelope and a protocol's own fields as one serializer, named for the schema."""
    name = "".join(part.capitalize() for part in protocol.replace("-", "_").split("_"))
    return type(f"{what}{name}Serializer", (envelope, own), {"__doc__": f"{what} of the {protocol} protocol."})


@functools.cache
def trial_serializer(protocol: str) -> type[serializers.Serializer]:
    return _protocol_variant(
        TrialEnvelopeSerializer, protocols.get_protocol(protocol).trial_serializer, protocol, "Trial"
    )


@functools.cache
def answer_serializer(protocol: str) -> type[serializers.Serializer]:
    return _protocol_variant(
        AnswerEnvelopeSerializer, protocols.get_protocol(protocol).answer_serializer, protocol, "Answer"
    )


_answer_validators = threading.local()


def validated_answer(protocol: str, data: Any) -> dict[str, Any]:
    """The answer's fields as answer_serializer(protocol) validates them, or its ValidationError (the same
    errors as is_valid gives). Each thread keeps one serializer per protocol, with its fields built once: DRF
    deep-copies a serializer's declared fields for every instance, half of an answer's validation."""
    kept: dict[str, serializers.Serializer[Any]] = _answer_validators.__dict__.setdefault("by_protocol", {})
    serializer = kept.get(protocol)
    if serializer is None:
        serializer = kept[protocol] = answer_serializer(protocol)()
    return dict(serializer.run_validation(data))


Variants = dict[str, serializers.Serializer[Any] | type[serializers.Serializer[Any]]]


def _trial_variants() -> Variants:
    return {name: trial_serializer(name) for name in protocols.registered()}


def _answer_variants() -> Variants:
    return {name: answer_serializer(name) for name in protocols.registered()}


# For the OpenAPI schema: one variant per registered protocol, evaluated when the schema is made.
# Trials name their protocol; answers are told apart by their fields.
TRIAL_SCHEMA = PolymorphicProxySerializer(
    component_name="Trial", serializers=_trial_variants, resource_type_field_name="protocol"
)
ANSWER_SCHEMA = PolymorphicProxySerializer(
    component_name="Answer", serializers=lambda: list(_answer_variants().values()), resource_type_field_name=None
)


class EventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Event.Type.choices)
    payload = serializers.DictField(required=False, default=dict)

    def validate_payload(self, value: dict[str, Any]) -> dict[str, Any]:
        return _small_json(value)


class EventRecordedSerializer(serializers.Serializer):
    type = serializers.CharField()
    created_at = serializers.DateTimeField()


class CalibrationSerializer(serializers.Serializer):
    px_per_mm = serializers.FloatField(
        min_value=MIN_PX_PER_MM,
        max_value=MAX_PX_PER_MM,
        help_text="CSS pixels per millimetre: the matched card outline's width in CSS pixels over 85.60 mm.",
        error_messages={
            "min_value": f"This screen scale is not plausible: at least {MIN_PX_PER_MM:g} CSS pixels per millimetre.",
            "max_value": f"This screen scale is not plausible: at most {MAX_PX_PER_MM:g} CSS pixels per millimetre.",
        },
    )


class CompleteSerializer(serializers.Serializer):
    feedback = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class DeclinedSerializer(serializers.Serializer):
    declined = serializers.BooleanField()


class CompletedSerializer(serializers.Serializer):
    completed = serializers.BooleanField()
    completion_code = serializers.CharField(required=False)
    submit_url = serializers.CharField(required=False)
    # Named like Serializer.fields, as the MTurk form's fields are; declared fields are collected by name.
    fields = serializers.DictField(required=False)  # type: ignore[assignment]
    redirect_url = serializers.CharField(required=False)
