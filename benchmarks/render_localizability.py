"""Rendering a localizability study (scalar pass, map pass, overlays, kept maps) against rendering the
2-AFC study of the same units and pool, in the same run.

Both studies sample the same units (same seed, model and layers) from the same pool, at the same t.
Each round renders the 2-AFC study, then the localizability one, each from nothing: a fresh database
and media folder for each render, so that neither reuses the other's activations or stored images.
Each figure is the median over the rounds.

Prints one line per render, then one JSON object as the last line: `ratio` (2-AFC seconds /
localizability seconds; target >= 0.5, i.e. at most twice as long), and both medians.

    .venv/bin/python benchmarks/render_localizability.py [--pool 400] [--units 6] [--t 4] [--rounds 2]
        [--model tf_efficientnet_lite0 | test_efficientnet]

Runs on an embedded SQLite database and local files in a temporary folder; touches nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
VAR = Path(tempfile.mkdtemp(prefix="render-localizability-"))
os.environ.update(VAR_DIR=str(VAR), DEBUG="false", SECRET_KEY="benchmark-only-" + "k" * 40)
os.environ.pop("DATABASE_URL", None)
os.environ.pop("STORAGE_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "psyplatform.settings")

import django  # noqa: E402

django.setup()

import timm  # noqa: E402
import torch  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from experiments.models import Study, StudyUnit, Trial, TrialImage  # noqa: E402
from experiments.rendering import render_study  # noqa: E402
from stimuli.models import ImagePool, KeptMap, StimulusImage, Unit, VisionModel  # noqa: E402

LITE0 = "tf_efficientnet_lite0"


def model_spec(name: str) -> VisionModel:
    if name == LITE0:
        defaults = {"timm_name": LITE0, "weights": VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE}
    else:
        # A random-weight timm architecture, saved once as a checkpoint (nothing is downloaded).
        torch.manual_seed(0)
        path = VAR / f"{name}.pth"
        torch.save(timm.create_model(name).state_dict(), path)
        defaults = {"timm_name": name, "weights": VisionModel.Weights.CHECKPOINT, "checkpoint_path": str(path)}
    model, _ = VisionModel.objects.get_or_create(name=name, defaults=defaults)
    return model


def wipe() -> None:
    """Nothing left of an earlier render: rows, activations, maps, stored images."""
    TrialImage.objects.all().delete()
    Trial.objects.all().delete()
    StudyUnit.objects.all().delete()
    Study.objects.all().delete()
    KeptMap.objects.all().delete()
    StimulusImage.objects.all().delete()
    Unit.objects.all().delete()
    for folder in (Path(settings.WORK_DIR), Path(settings.MEDIA_ROOT)):
        shutil.rmtree(folder, ignore_errors=True)


def render_once(protocol: str, args: argparse.Namespace) -> float:
    wipe()
    pool, _ = ImagePool.objects.get_or_create(
        name=f"crops-{args.pool}", defaults={"source": ImagePool.Source.SKIMAGE_CROPS, "size": args.pool}
    )
    study = Study.objects.create(
        slug=f"bench-{protocol}",
        name=protocol,
        protocol=protocol,
        model=model_spec(args.model),
        image_pool=pool,
        seed=7,
        n_units=args.units,
        trials_per_unit=args.t,
        batches_used=0,
        n_practice_trials=0,
        params={"n_practice_obvious": 0} if protocol == "2afc" else {},
    )
    started = time.perf_counter()
    render_study(study)
    seconds = time.perf_counter() - started
    images = TrialImage.objects.filter(trial__study=study).count()
    print(f"{protocol}: {seconds:.2f} s, {images} trial images", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=400)
    parser.add_argument("--units", type=int, default=6)
    parser.add_argument("--t", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default=LITE0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    times: dict[str, list[float]] = {"2afc": [], "localizability": []}
    try:
        for _ in range(args.rounds):
            for protocol in times:
                times[protocol].append(render_once(protocol, args))
    finally:
        shutil.rmtree(VAR, ignore_errors=True)
    two_afc, localizability = (statistics.median(times[p]) for p in ("2afc", "localizability"))
    print(json.dumps({
        "ratio": round(two_afc / localizability, 3),
        "seconds_2afc": round(two_afc, 2),
        "seconds_localizability": round(localizability, 2),
        "pool": args.pool, "units": args.units, "t": args.t, "rounds": args.rounds, "model": args.model,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }))


if __name__ == "__main__":
    main()
