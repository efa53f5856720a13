"""What nameability's trial payloads and answers hold, for validation and the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from protocols.base import Fields, GridSerializer

MAX_TEXT = 500
MAX_MS = 24 * 3600 * 1000


class LimitsSerializer(Fields):
    min_words = serializers.IntegerField()
    max_words = serializers.IntegerField()
    max_chars = serializers.IntegerField()


class DescribeTrialSerializer(Fields):
    exemplars = serializers.ListField(child=serializers.CharField(), help_text="The unit's top-activating images.")
    grid = GridSerializer(help_text="How the exemplars are laid out.")
    limits = LimitsSerializer(help_text="What a name may be: the server refuses others with a message.")


class DescribeAnswerSerializer(Fields):
    # Stored as typed: the normalised form is derived on the server.
    text = serializers.CharField(
        min_length=1, max_length=MAX_TEXT, trim_whitespace=False, help_text="The name, as typed."
    )
    pasted = serializers.BooleanField(default=False, help_text="Text was pasted or dropped into the box.")
    keystrokes = serializers.IntegerField(min_value=0, default=0, help_text="Keys pressed in the box.")
    typing_ms = serializers.IntegerField(
        min_value=0, max_value=MAX_MS, default=0, help_text="From the first key (or paste) to submitting."
    )
    focus_lost = serializers.BooleanField(default=False, help_text="The window lost focus while typing.")


class VerifyTrialSerializer(Fields):
    name = serializers.CharField(help_text="A name written by another participant.")
    candidates = serializers.ListField(child=serializers.CharField(), help_text="The images to choose from.")


class VerifyAnswerSerializer(Fields):
    choice = serializers.IntegerField(min_value=0, max_value=8, help_text="The chosen candidate's position.")
