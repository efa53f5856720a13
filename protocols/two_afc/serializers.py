"""What the 2-AFC trial payload and answer hold, for validation and the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from protocols.base import Fields, GridSerializer


class ReferencesSerializer(Fields):
    min = serializers.ListField(child=serializers.CharField(), help_text="Left block, most extreme first.")
    max = serializers.ListField(child=serializers.CharField(), help_text="Right block, most extreme first.")


class TwoAFCTrialSerializer(Fields):
    references = ReferencesSerializer()
    queries = serializers.ListField(child=serializers.CharField(), help_text="Upper, then lower query.")
    grid = GridSerializer(help_text="How each reference block is laid out.")


class TwoAFCAnswerSerializer(Fields):
    choice = serializers.IntegerField(min_value=0, max_value=1, help_text="0 upper, 1 lower query.")
    confidence = serializers.IntegerField(min_value=1, max_value=3)
