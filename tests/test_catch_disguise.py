"""Catch queries are disguised copies: comparing pixels with the references does not single them out.

On a rendered study (40 units of the random-weight `test_efficientnet`, 5 trials
each, a pool of 400 scikit-image crops: 400 main and 80 catch queries), each
attack of tests/pixel_attacks.py gives every query its distance to the nearest
reference of its trial, and a threshold on it is judged by how many catch
queries it finds with no main query among them (the issue found 165 of 165 so),
and by its best balanced accuracy (0.5 is chance). `pytest -s` prints the table.

What a person recognises at once stays near-duplicate to a thumbnail or a hash,
so those are bounded less tightly than the issue's pixel comparison; the bounds
are the measured figures with a margin, and docs/protocols.md states them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import timm
import torch
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import override_settings
from PIL import Image

from experiments.models import Trial
from experiments.rendering import render_study
from protocols.two_afc.protocol import QUERY_ROLES
from stimuli.models import StimulusImage
from tests.factories import ImagePoolFactory, RenderableStudyFactory, VisionModelFactory
from tests.pixel_attacks import ATTACKS, Pixels, Separation, separation

ISSUE_ATTACK = "pixel MSE"
# The database is set up only for marked tests; the render itself is the module fixture's.
pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Measured:
    queries: dict[str, Separation]  # per attack: catch queries against main queries
    trials: dict[str, Separation]  # per attack: a trial's farther query, catch trials against main trials
    copy_to_source: float  # median pixel MSE of a catch query to the reference it copies
    main_to_nearest: float  # median pixel MSE of a main query to its nearest reference

    def table(self) -> str:
        lines = [f"{'attack':40} {'found alone':>12} {'AUC':>6} {'best acc':>9}   trials: AUC, best acc"]
        for name, q in self.queries.items():
            t = self.trials[name]
            lines.append(
                f"{name:40} {q.found_alone:12.2f} {q.auc:6.2f} {q.best_accuracy:9.2f}   {t.auc:.2f}, {t.best_accuracy:.2f}"
            )
        lines.append(f"median pixel MSE: copy to its source {self.copy_to_source:.0f}, "
                     f"main query to its nearest reference {self.main_to_nearest:.0f}")
        return "\n".join(lines)


def decoded(image: StimulusImage) -> Pixels:
    with default_storage.open(image.file) as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def measure(study) -> Measured:
    by_kind: dict[str, list[tuple[list[Pixels], list[Pixels], list[Pixels]]]] = {"main": [], "catch": []}
    for trial in Trial.objects.filter(study=study, kind__in=by_kind).prefetch_related("images__image"):
        images = list(trial.images.all())
        references = [decoded(i.image) for i in images if i.role not in QUERY_ROLES]
        queries = [decoded(i.image) for i in images if i.role in QUERY_ROLES]
        keys = {i.image.source_key for i in images if i.role in QUERY_ROLES}
        sources = [decoded(i.image) for i in images if i.role not in QUERY_ROLES and i.image.source_key in keys]
        by_kind[trial.kind].append((references, queries, sources))
    queries, trials = {}, {}
    for attack in ATTACKS:
        distances = {
            kind: [[attack.nearest(q, references) for q in qs] for references, qs, _ in shown]
            for kind, shown in by_kind.items()
        }
        queries[attack.name] = separation(sum(distances["catch"], []), sum(distances["main"], []))
        trials[attack.name] = separation([max(d) for d in distances["catch"]], [max(d) for d in distances["main"]])
    pixel_mse = ATTACKS[0]
    return Measured(
        queries,
        trials,
        copy_to_source=float(np.median([
            pixel_mse.nearest(q, sources) for _, qs, sources in by_kind["catch"] for q in qs
        ])),
        main_to_nearest=float(np.median([
            pixel_mse.nearest(q, references) for references, qs, _ in by_kind["main"] for q in qs
        ])),
    )


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker, tmp_path_factory) -> Measured:
    """One render for the module's tests, rolled back once it is measured."""
    folder = tmp_path_factory.mktemp("disguise")
    torch.manual_seed(0)
    torch.save(timm.create_model("test_efficientnet").state_dict(), folder / "tiny.pth")
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                            "OPTIONS": {"location": str(folder / "media")}}}
    with override_settings(WORK_DIR=folder / "work", STORAGES=storages), django_db_blocker.unblock():
        with transaction.atomic():
            model = VisionModelFactory(
                name="tiny", timm_name="test_efficientnet", weights="checkpoint",
                checkpoint_path=str(folder / "tiny.pth"),
            )
            study = RenderableStudyFactory(
                model=model, seed=3, n_units=40, trials_per_unit=5,
                image_pool=ImagePoolFactory(name="crops-400", size=400),
            )
            render_study(study)
            result = measure(study)
            transaction.set_rollback(True)
    print("\n" + result.table())
    return result


def test_pixel_mse_to_the_references_finds_few_catch_queries(measured):
    found = measured.queries[ISSUE_ATTACK]
    assert found.found_alone <= 0.1 and found.best_accuracy <= 0.75, measured.table()


def test_thumbnails_and_hashes_find_few_catch_queries_without_false_alarms(measured):
    assert all(s.found_alone <= 0.25 for s in measured.queries.values()), measured.table()


def test_no_attack_tells_catch_queries_or_trials_apart_as_pixels_did_before(measured):
    # Before, every catch query was found with no false alarm: accuracy 1.0. A catch trial has two
    # copies, so that a bot requiring both queries to be near tells trials apart better than queries.
    assert all(s.best_accuracy <= 0.85 for s in measured.queries.values()), measured.table()
    assert all(s.best_accuracy <= 0.92 for s in measured.trials.values()), measured.table()


def test_a_copy_is_about_as_far_from_its_source_as_a_main_query_from_its_nearest_reference(measured):
    assert measured.copy_to_source >= measured.main_to_nearest / 3, measured.table()
