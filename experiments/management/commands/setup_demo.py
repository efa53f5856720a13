"""Build the `demo` study on the offline defaults, render it, and print how to use it.

Also `demo-mturk`: a copy of `demo` recruiting through the MTurk sandbox, open but not
launched, so that the MTurk participant path (preview, arrival, hand-back) can be tried
locally; and `demo-localizability`: the localizability protocol on channel units of the same
model and pool. Rerunnable: existing rows are reused and rendering skips finished work.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.copies import copy_study
from experiments.links import participant_url
from experiments.models import Study
from experiments.recruiters import recruiter_for
from stimuli.models import ImagePool, VisionModel
from workers.models import Job
from workers.services import start_rendering

DEMO_UNITS = 48
MTURK_SLUG = "demo-mturk"
LOCALIZABILITY_SLUG = "demo-localizability"
SANDBOX_SUBMIT = "https%3A%2F%2Fworkersandbox.mturk.com"


class Command(BaseCommand):
    help = "Create and render the demo 2-AFC study (EfficientNet-Lite0, scikit-image crops)."

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
        self._render(self._localizability(model, pool))
        password = os.getenv("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        self._admin(password)
        base = f"http://127.0.0.1:{port}"
        participant = f"demo-{secrets.token_hex(3)}"
        mturk = f"{base}/s/{MTURK_SLUG}/?hitId=3DEMOHIT&turkSubmitTo={SANDBOX_SUBMIT}&assignmentId="
        worker = secrets.token_hex(4).upper()
        self.stdout.write(
            self.style.SUCCESS("\nThe demo is ready.\n")
            + f"  Admin:       {base}/admin/   user: admin   password: {password}\n"
            + f"  Participant: {base}/s/demo/?participant={participant}\n"
            + "  (any other ?participant= value starts another participant: the demo accepts unsigned links)\n"
            + f"  Signed link: {participant_url(study, participant, base)}\n"
            + "  (what a real study needs: `manage.py participant_link demo ID` or the admin makes them)\n"
            + f"  Localizability: {base}/s/{LOCALIZABILITY_SLUG}/?participant={participant}\n"
            + f"  API schema:  {base}/api/v1/schema/\n"
            + "\n  The MTurk path, on the sandbox study demo-mturk (not launched):\n"
            + f"  Preview:     {mturk}ASSIGNMENT_ID_NOT_AVAILABLE\n"
            + f"  Accepted:    {mturk}3DEMO{worker}&workerId=ADEMO{worker}\n"
            + "  (finishing hands the assignment to the MTurk sandbox, as a real HIT does)\n"
        )

    def _render(self, study: Study) -> None:
        if study.status in (Study.Status.OPEN, Study.Status.CLOSED):
            return
        self.stdout.write("Rendering the demo stimuli (a few minutes on a CPU)...")
        job = start_rendering(study)
        job.refresh_from_db()
        if job.status != Job.Status.DONE:
            raise CommandError(f"Rendering failed: {job.error or job.status}")
        Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)

    def _localizability(self, model: VisionModel, pool: ImagePool) -> Study:
        # Channel units: the SAE latents of issue 11 are not a unit kind of this branch yet.
        study, _ = Study.objects.get_or_create(
            slug=LOCALIZABILITY_SLUG,
            defaults={
                "name": "Demo: EfficientNet-Lite0 channels, localizability",
                "protocol": "localizability",
                "model": model,
                "image_pool": pool,
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
