"""What the localizability trial payload and answer hold, for validation and the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from protocols.base import Fields


class ExemplarSerializer(Fields):
    image = serializers.CharField(help_text="The plain exemplar image.")
    overlay = serializers.CharField(help_text="Its heat map: a PNG with alpha, of the image's size, laid over it.")


class QuerySerializer(Fields):
    image = serializers.CharField()
    width = serializers.IntegerField(help_text="The stored image's pixels: clicks are answered in these.")
    height = serializers.IntegerField()


class LocalizabilityTrialSerializer(Fields):
    exemplars = ExemplarSerializer(many=True, help_text="Strongest first.")
    query = QuerySerializer()
    max_clicks = serializers.IntegerField(help_text="Clicks a response may hold.")


class QueryBoxSerializer(Fields):
    """How the query was drawn when it was clicked, for analysts (clicks do not depend on it)."""

    css_width = serializers.FloatField(min_value=0, help_text="The query's rendered box, in CSS pixels.")
    css_height = serializers.FloatField(min_value=0)
    device_pixel_ratio = serializers.FloatField(min_value=0)
    viewport_width = serializers.FloatField(min_value=0)
    viewport_height = serializers.FloatField(min_value=0)


class LocalizabilityAnswerSerializer(Fields):
    clicks = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=0), min_length=2, max_length=2),
        min_length=1,
        max_length=3,
        help_text="[x, y] in the query image's own pixels (0 <= x < width, 0 <= y < height), in click order.",
    )
    query_box = QueryBoxSerializer()
