"""factory_boy factories for every model the tests touch."""

from __future__ import annotations

import hashlib
import io

import factory
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from experiments.models import Study, StudyUnit, Trial, TrialImage
from protocols.two_afc.protocol import QUERY_NEGATIVE, QUERY_POSITIVE, REFERENCE_MAX, REFERENCE_MIN
from stimuli.models import ImagePool, SparseAutoencoder, StimulusImage, Unit, VisionModel


class VisionModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VisionModel
        django_get_or_create = ("name",)

    name = "lite0"
    timm_name = "tf_efficientnet_lite0"
    weights = VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE


class ImagePoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImagePool
        django_get_or_create = ("name",)

    name = "skimage"
    source = ImagePool.Source.SKIMAGE_CROPS
    size = 200


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit

    model = factory.SubFactory(VisionModelFactory)
    layer = "blocks.3"
    channel = factory.Sequence(lambda n: n)


class SparseAutoencoderFactory(factory.django.DjangoModelFactory):
    """A trained SAE's record (no weights file): for what reads only its metrics."""

    class Meta:
        model = SparseAutoencoder

    name = factory.Sequence(lambda n: f"sae-{n}")
    model = factory.SubFactory(VisionModelFactory)
    layer = "blocks.5"
    image_pool = factory.SubFactory(ImagePoolFactory)
    n_latents = 8
    status = SparseAutoencoder.Status.TRAINED
    firing_frequency = [0.0, 0.01, 0.5, 0.02, 0.0, 0.1, 0.03, 0.2]


def png_bytes(seed: int) -> bytes:
    """A small distinct image, so that every stimulus has its own content hash."""
    image = Image.new("RGB", (8, 8), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    image.putpixel((seed % 8, (seed // 8) % 8), (seed % 251, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class StimulusImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StimulusImage

    class Params:
        content = factory.Sequence(lambda n: png_bytes(n) + n.to_bytes(4, "big"))

    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    file = factory.LazyAttribute(
        lambda o: default_storage.save(f"stimuli/{o.sha256}.png", ContentFile(o.content))
    )
    source_key = factory.Sequence(lambda n: f"test/{n}")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    slug = factory.Sequence(lambda n: f"study-{n}")
    name = factory.LazyAttribute(lambda o: o.slug)
    status = Study.Status.OPEN
    model = factory.SubFactory(VisionModelFactory)
    image_pool = factory.SubFactory(ImagePoolFactory)
    trials_per_unit = 2
    batches_used = 0
    target_per_unit = 30
    # The API tests answer at once and make up participant ids: the lock, signed links and the timing
    # checks are off here, and their own tests set them.
    lock_ms = 0
    accepts_unsigned_links = True
    max_lock_boundary_share = 1.0
    min_timing_variation = 0.0


class StudyUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudyUnit

    study = factory.SubFactory(StudyFactory)
    unit = factory.SubFactory(UnitFactory, model=factory.SelfAttribute("..study.model"))
    role = StudyUnit.Role.MAIN
    order = factory.Sequence(lambda n: n)


class TrialFactory(factory.django.DjangoModelFactory):
    """A 2-AFC trial with 9 + 9 references and its two queries."""

    study = factory.SubFactory(StudyFactory)
    unit = factory.SubFactory(UnitFactory, model=factory.SelfAttribute("..study.model"))
    kind = Trial.Kind.MAIN
    batch = 0
    difficulty = "easy"

    class Meta:
        model = Trial
        skip_postgeneration_save = True

    @factory.post_generation
    def images(trial: Trial, create: bool, extracted, **kwargs) -> None:
        if not create:
            return
        refs = trial.study.protocol_params.references_per_side
        slots = [(REFERENCE_MIN, r) for r in range(refs)]
        slots += [(REFERENCE_MAX, r) for r in range(refs)]
        slots += [(QUERY_POSITIVE, 0), (QUERY_NEGATIVE, 0)]
        images = StimulusImage.objects.bulk_create(
            StimulusImageFactory.build() for _ in slots
        )
        TrialImage.objects.bulk_create(
            TrialImage(trial=trial, role=role, rank=rank, image=image)
            for (role, rank), image in zip(slots, images, strict=True)
        )


class RenderableStudyFactory(StudyFactory):
    """A 2-AFC study small enough to render in seconds on a CPU: 3 main units at t = 2
    (easy), 2 practice units (1 obvious, 1 less obvious at very hard), 64 crops."""

    status = Study.Status.DRAFT
    image_pool = factory.SubFactory(ImagePoolFactory, name="crops-64", size=64)
    n_units = 3
    trials_per_unit = 2
    n_practice_trials = 2
    params = {"difficulty": "easy", "n_practice_obvious": 1, "practice_less_obvious_difficulty": "very_hard"}
