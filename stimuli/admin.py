from typing import Any

from django import forms
from django.contrib import admin
from django.core.files.storage import default_storage
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from stimuli.models import ImagePool, StimulusImage, Unit, VisionModel
from stimuli.pools import PoolError, open_pool

# The forms' own fields: the admin adds its read-only ones to the forms' Meta.
MODEL_FIELDS = ("name", "timm_name", "weights", "checkpoint_path", "layers")
POOL_FIELDS = ("name", "source", "location", "size", "seed")


class VisionModelForm(forms.ModelForm[VisionModel]):
    """The architecture is chosen from timm's installed list; saving builds the network, so that a wrong
    name, weights file or layer is refused here rather than by a render hours later."""

    class Meta:
        model = VisionModel
        fields = MODEL_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Imported here: only this form needs torch and timm in a web process.
        from stimuli.networks import architectures

        self.fields["timm_name"] = forms.ChoiceField(
            choices=[(name, name) for name in architectures()],
            help_text="A timm architecture installed here.",
        )

    def clean(self) -> dict[str, Any]:
        from stimuli.networks import NetworkError, checked_layers

        data = super().clean() or {}
        if self.errors:
            return data
        spec = VisionModel(**{name: data.get(name) for name in MODEL_FIELDS})
        spec.layers = spec.layers or []
        try:
            checked_layers(spec)
        except NetworkError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(VisionModel)
class VisionModelAdmin(admin.ModelAdmin[VisionModel]):
    form = VisionModelForm
    list_display = ("name", "timm_name", "weights", "layers")
    search_fields = ("name", "timm_name")
    readonly_fields = ("qualifying_layers",)

    @admin.display(description="layers that qualify (IMI's rule)")
    def qualifying_layers(self, model: VisionModel) -> str:
        """The modules IMI's rule picks for the architecture, with their output channels, so that a
        researcher can copy names into `layers` (an override) without reading timm's source."""
        if not model.timm_name:
            return "Save the model with a timm name to list its layers."
        # Imported here: torch and timm are worth loading in a web process only for this page.
        from stimuli.networks import NetworkError, architecture_layers

        try:
            family, layers, prefix_tokens, _modules = architecture_layers(model.timm_name)
        except (NetworkError, RuntimeError) as exc:
            return f"Cannot list the layers of {model.timm_name}: {exc}"
        chosen = set(model.layers)
        rows = format_html_join(
            "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            ((name, channels, "configured" if name in chosen else "") for name, channels in layers.items()),
        )
        tokens = (
            f" Units average the patch tokens only: the first {prefix_tokens} (class and register tokens) "
            "are left out."
            if prefix_tokens else ""
        )
        return format_html(
            "<p>{} rule: {} layers{}.{}</p><table><thead><tr><th>module</th><th>output channels</th><th></th></tr>"
            "</thead><tbody>{}</tbody></table>",
            family, len(layers), "" if chosen else ", all of them used (no override)", tokens, rows,
        )


class ImagePoolForm(forms.ModelForm[ImagePool]):
    """Saving opens the pool, so that a missing folder, an empty prefix or an unreadable listing is refused."""

    class Meta:
        model = ImagePool
        fields = POOL_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            open_pool(ImagePool(**{name: data.get(name) for name in POOL_FIELDS})).keys()
        except (PoolError, OSError, ValueError) as exc:
            raise forms.ValidationError(f"This pool cannot be opened: {exc}") from exc
        return data


@admin.register(ImagePool)
class ImagePoolAdmin(admin.ModelAdmin[ImagePool]):
    form = ImagePoolForm
    list_display = ("name", "source", "location", "size", "seed")
    list_filter = ("source",)
    search_fields = ("name", "location")
    readonly_fields = ("image_count",)

    @admin.display(description="images")
    def image_count(self, obj: ImagePool) -> str:
        if not obj.pk:
            return "Counted once saved."
        try:
            return str(len(open_pool(obj).keys()))
        except (PoolError, OSError, ValueError) as exc:
            return f"Cannot be opened: {exc}"


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
