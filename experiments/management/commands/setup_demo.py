"""Build the `demo` study on the offline defaults, render it, and print how to use it.

Also `demo-mturk`: a copy of `demo` recruiting through the MTurk sandbox, open but not
launched, so that the MTurk participant path (preview, arrival, hand-back) can be tried
locally; `demo-sae`: a 2-AFC study whose units are latents of a small TopK SAE
trained (in about a minute on a CPU) on EfficientNet-Lite0's `blocks.5`; `demo-localizability`:
the localizability protocol on latents of the same SAE; and `demo-nameability`, the describe
stage of nameability on the same model and pool, whose verify study is built once people have
named its units. Rerunnable: existing rows are reused, training and rendering skip finished work.
"""

import os
import secrets
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.copies import copy_study
from experiments.links import participant_url
from experiments.models import Study
from experiments.recruiters import recruiter_for
from stimuli.models import ImagePool, SparseAutoencoder, Unit, VisionModel
from workers.models import Job
from workers.services import start_rendering, start_training

DEMO_UNITS = 48
MTURK_SLUG = "demo-mturk"
LOCALIZABILITY_SLUG = "demo-localizability"
SAE_SLUG = "demo-sae"
# A TopK SAE small enough to train in under two minutes on a 2-core CPU: 300 images x 49 positions
# of the 192-channel 7 x 7 stage (14,700 tokens), 384 latents, 8 active per token, 6 epochs.
DEMO_SAE = {
    "layer": "blocks.5", "n_images": 300, "n_latents": 384, "k": 8, "epochs": 6, "batch_size": 1024,
    "learning_rate": 2e-3,
}
NAMEABILITY_SLUG = "demo-nameability"
SANDBOX_SUBMIT = "https%3A%2F%2Fworkersandbox.mturk.com"


class Command(BaseCommand):
    help = "Create and render the demo studies: 2-AFC and nameability (EfficientNet-Lite0, scikit-image crops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--pool-size", type=int, default=int(os.getenv("DEMO_POOL_SIZE", 2000)))

    def handle(self, *args, port: int, pool_size: int, **options) -> None:
        model, _ = VisionModel.objects.get_or_create(
            name="efficientnet-lite0",
            defaults={
                "timm_name": "tf_efficientnet_lite0",
                "weights": VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE,
            },
        )
        pool, _ = ImagePool.objects.get_or_create(
            name="skimage-crops",
            defaults={"source": ImagePool.Source.SKIMAGE_CROPS, "size": pool_size, "seed": 0},
        )
        study, _ = Study.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Demo: EfficientNet-Lite0, natural 2-AFC",
                "model": model,
                "image_pool": pool,
                "n_units": DEMO_UNITS,
                "trials_per_unit": 2,
                "batches_used": 0,
                "params": {"difficulty": "easy"},
                # So that the demo can be tried at once with any ?participant= id (a pilot's setting).
                "accepts_unsigned_links": True,
            },
        )
        self._render(study)
        self._mturk_copy(study)
        sae_study = self.sae_study(model, pool)
        self._render(sae_study)
        self._render(self._localizability(sae_study))
        nameability, _ = Study.objects.get_or_create(
            slug=NAMEABILITY_SLUG,
            defaults={
                "name": "Demo: EfficientNet-Lite0, nameability (describe)",
                "protocol": "nameability",
                "model": model,
                "image_pool": pool,
                "n_units": 12,
                "trials_per_unit": 3,
                "batches_used": 0,
                "n_main_trials": 10,
                "target_per_unit": 3,
                # Names have no right answer; catch replies stay silent so that catch trials are not told apart.
                "main_feedback": False,
                "accepts_unsigned_links": True,
            },
        )
        self._render(nameability)
        password = os.getenv("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        self._admin(password)
        base = f"http://127.0.0.1:{port}"
        mturk = Study.objects.get(slug=MTURK_SLUG)
        others = [SAE_SLUG, LOCALIZABILITY_SLUG, NAMEABILITY_SLUG]
        labelled = dict(demo_links(study, mturk, base, Study.objects.filter(slug__in=others)))
        self.stdout.write(
            self.style.SUCCESS("\nThe demo is ready.\n")
            + f"  Admin:       {labelled['admin']}   user: admin   password: {password}\n"
            + f"  Participant: {labelled['participant']}\n"
            + "  (any other ?participant= value starts another participant: the demo accepts unsigned links)\n"
            + f"  Signed link: {labelled['signed']}\n"
            + "  (what a real study needs: `manage.py participant_link demo ID` or the admin makes them)\n"
            + f"  API schema:  {labelled['schema']}\n"
            + "\n  The other demo studies (unsigned links too):\n"
            + "".join(f"  {slug + ':':<19} {labelled[slug]}\n" for slug in others)
            + "\n  The MTurk path, on the sandbox study demo-mturk (not launched):\n"
            + f"  Preview:     {labelled['mturk preview']}\n"
            + f"  Accepted:    {labelled['mturk accepted']}\n"
            + "  (finishing hands the assignment to the MTurk sandbox, as a real HIT does)\n"
            + "\n  Nameability, describe stage (name what a unit's images have in common):\n"
            + f"  Participant: {labelled[NAMEABILITY_SLUG]}\n"
            + "  Its verify study, once some participants have passed: select demo-nameability in the admin and\n"
            + "  run 'Build the verify study', or\n"
            + f"    DEBUG=true .venv/bin/python manage.py build_derived_study {NAMEABILITY_SLUG} --open\n"
            + f"  then {base}/s/{NAMEABILITY_SLUG}-verify/?participant=another-id\n"
            + "  (describe participants are refused there: the two studies are linked).\n"
            + "  'Compute unit statistics' in the admin gives each unit its names' agreement (and verify score).\n"
        )

    def sae_study(self, model: VisionModel, pool: ImagePool) -> Study:
        """The demo SAE, trained if it is not yet, and the `demo-sae` study on its latents."""
        sae, _ = SparseAutoencoder.objects.get_or_create(
            name="demo-lite0-blocks5", defaults={"model": model, "image_pool": pool, **DEMO_SAE}
        )
        if sae.status != SparseAutoencoder.Status.TRAINED:
            self.stdout.write("Training the demo SAE (about a minute on a CPU)...")
            job = start_training(sae)
            job.refresh_from_db()
            if job.status != Job.Status.DONE:
                raise CommandError(f"Training the demo SAE failed: {job.error or job.status}")
            sae.refresh_from_db()
        study, _ = Study.objects.get_or_create(
            slug=SAE_SLUG,
            defaults={
                "name": "Demo: SAE latents of EfficientNet-Lite0 blocks.5, natural 2-AFC",
                "model": model,
                "image_pool": pool,
                "unit_kind": Unit.Kind.SAE_LATENT,
                "sae": sae,
                "n_units": DEMO_UNITS,
                "trials_per_unit": 2,
                "batches_used": 0,
                "params": {"difficulty": "easy"},
                "accepts_unsigned_links": True,
            },
        )
        return study

    def _render(self, study: Study) -> None:
        if study.status in (Study.Status.OPEN, Study.Status.CLOSED):
            return
        self.stdout.write(f"Rendering the {study.slug} stimuli (a few minutes on a CPU)...")
        job = start_rendering(study)
        job.refresh_from_db()
        if job.status != Job.Status.DONE:
            raise CommandError(f"Rendering failed: {job.error or job.status}")
        Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)

    def _localizability(self, sae_study: Study) -> Study:
        """`demo-localizability`: the localizability protocol on latents of the demo SAE."""
        study, _ = Study.objects.get_or_create(
            slug=LOCALIZABILITY_SLUG,
            defaults={
                "name": "Demo: SAE latents of EfficientNet-Lite0 blocks.5, localizability",
                "protocol": "localizability",
                "model": sae_study.model,
                "image_pool": sae_study.image_pool,
                "unit_kind": Unit.Kind.SAE_LATENT,
                "sae": sae_study.sae,
                "n_units": 24,
                "trials_per_unit": 2,
                "batches_used": 0,
                "n_main_trials": 20,
                "n_practice_trials": 3,
                "accepts_unsigned_links": True,
            },
        )
        return study

    def _mturk_copy(self, study: Study) -> None:
        mturk = Study.objects.filter(slug=MTURK_SLUG).first() or copy_study(
            study,
            MTURK_SLUG,
            name="Demo on the MTurk sandbox (not launched)",
            recruiter="mturk",
            status=Study.Status.OPEN,
        )
        # Its recruitment settings, ready to review in the admin: sandbox by default; launching
        # it needs PUBLIC_BASE_URL on HTTPS.
        recruiter_for(mturk.recruiter).prepare(mturk)

    def _admin(self, password: str) -> None:
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()


def demo_links(demo: Study, mturk: Study, base: str, others: Iterable[Study] = ()) -> list[tuple[str, str]]:
    """Every link the demo prints, each one that works: fresh participant and worker ids each run, as a
    finished participant or worker is refused a second session; each of the other demo studies under its slug."""
    participant = f"demo-{secrets.token_hex(3)}"
    worker = secrets.token_hex(4).upper()
    hit = f"{base}/s/{mturk.slug}/?hitId=3DEMOHIT&turkSubmitTo={SANDBOX_SUBMIT}&assignmentId="
    return [
        ("admin", f"{base}/admin/"),
        ("participant", f"{base}/s/{demo.slug}/?participant={participant}"),
        ("signed", participant_url(demo, participant, base)),
        ("schema", f"{base}/api/v1/schema/"),
        ("mturk preview", f"{hit}ASSIGNMENT_ID_NOT_AVAILABLE"),
        ("mturk accepted", f"{hit}3DEMO{worker}&workerId=ADEMO{worker}"),
        *((study.slug, f"{base}/s/{study.slug}/?participant={participant}") for study in others),
    ]
