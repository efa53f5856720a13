from django.contrib import admin
from django.core.files.storage import default_storage
from django.http import HttpRequest
from django.utils.html import format_html

from stimuli.models import ImagePool, StimulusImage, Unit, VisionModel


@admin.register(VisionModel)
class VisionModelAdmin(admin.ModelAdmin[VisionModel]):
    list_display = ("name", "timm_name", "weights", "layers")
    search_fields = ("name", "timm_name")


@admin.register(ImagePool)
class ImagePoolAdmin(admin.ModelAdmin[ImagePool]):
    list_display = ("name", "source", "location", "size", "seed")
    list_filter = ("source",)
    search_fields = ("name", "location")


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin[Unit]):
    list_display = ("__str__", "model", "kind", "layer", "channel")
    list_filter = ("model", "kind", "layer")
    search_fields = ("layer",)


@admin.register(StimulusImage)
class StimulusImageAdmin(admin.ModelAdmin[StimulusImage]):
    list_display = ("thumbnail", "sha256", "source_key")
    search_fields = ("sha256", "source_key", "file")
    fields = ("preview", "sha256", "file", "source_key")
    # Rows are content-addressed: editing one would break its name's promise.
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="image")
    def thumbnail(self, image: StimulusImage) -> str:
        return format_html('<img src="{}" width="64" height="64" alt="">', default_storage.url(image.file))

    @admin.display(description="image")
    def preview(self, image: StimulusImage) -> str:
        return format_html('<img src="{}" width="224" height="224" alt="">', default_storage.url(image.file))
