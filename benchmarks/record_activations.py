"""Throughput and memory of activation recording against the network's raw forward pass.

In one process, on one model, batch size and device:
- raw forward: images/s of the module alone on pre-made, normalised input tensors;
- recording: images/s of stimuli.recording.record_activations on a pool of
  scikit-image crops (decoding in a DataLoader, normalising, hooks,
  per-channel means, streaming rows to the on-disk array), for each pool size.
A shared virtual machine's speed drifts from second to second, so the raw
forward is measured during each recording: one raw batch after every few
recorded ones (--raw-every), its time taken off the recording's. With
decoding worker processes (the GPU default), which would go on decoding
during those raw batches, each recording is instead bracketed by raw
measurements and compared with their mean. Several rounds; each figure is
the median over the rounds.

Prints one line per measurement, then one JSON object as the last line:
`ratio` (recording / raw forward at the largest pool; target >= 0.9), the
per-pool ratios and throughputs, and peak memory per pool (`peak_*` keys:
RSS growth of this process, and RSS of the decoding workers; target flat).

    .venv/bin/python benchmarks/record_activations.py [--sizes 500 2000] [--rounds 3]
        [--raw-every 4] [--batch-size 16] [--num-workers 0] [--units 53] [--device cpu]
        [--model tf_efficientnet_lite0]
        (batch size and workers default to what a render uses on the device)

No database is touched; Django is set up only for settings and models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "psyplatform.settings")

import django  # noqa: E402

django.setup()

import timm  # noqa: E402
import torch  # noqa: E402

from stimuli.layers import layers_of_interest  # noqa: E402
from stimuli.models import VisionModel  # noqa: E402
from stimuli.networks import load_network  # noqa: E402
from stimuli.pools import SkimageCrops  # noqa: E402
from stimuli.recording import loader_defaults, no_progress, record_activations  # noqa: E402
from stimuli.sampling import sample_layer_channels, seeded_rng  # noqa: E402
from stimuli.unitrefs import UnitRef  # noqa: E402

LITE0 = "tf_efficientnet_lite0"
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_MB
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def child_pids() -> list[int]:
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                pids += [int(pid) for pid in children.read().split()]
        except FileNotFoundError:
            pass  # the thread ended since the listing
    return pids


class PeakMemory:
    """Samples this process's RSS and its children's (decoding workers) every 20 ms."""

    def __init__(self) -> None:
        self.baseline = rss_mb(os.getpid())
        self.peak_self = self.baseline
        self.peak_workers = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_self = max(self.peak_self, rss_mb(os.getpid()))
            self.peak_workers = max(self.peak_workers, sum(rss_mb(pid) for pid in child_pids()))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def raw_forward_seconds(network, batches: list[torch.Tensor]) -> float:
    """Seconds the module alone takes on ready-made, already normalised batches on the device."""
    with torch.inference_mode():
        start = time.perf_counter()
        for batch in batches:
            network.module(batch)
        if network.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def raw_forward_ips(network, batches: list[torch.Tensor]) -> float:
    return sum(len(batch) for batch in batches) / raw_forward_seconds(network, batches)


class InterleavedRawForward:
    """A recording's progress callback that runs one raw batch after every `every` recorded ones.

    Both throughputs then come from the same stretch of time, so the machine's
    drift cancels out of their ratio; the raw batches' time is taken off the
    recording's. Only valid without decoding worker processes, which would go
    on decoding during the raw batches.
    """

    def __init__(self, network, batches: list[torch.Tensor], every: int) -> None:
        self.network, self.batches, self.every = network, batches, every
        self.calls = self.images = 0
        self.seconds = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            batch = self.batches[self.calls // self.every % len(self.batches)]
            self.seconds += raw_forward_seconds(self.network, [batch])
            self.images += len(batch)

    @property
    def ips(self) -> float:
        return self.images / self.seconds


def benchmark_model(timm_name: str, scratch: Path) -> VisionModel:
    """The offline default network, or any timm architecture with random weights."""
    if timm_name == LITE0:
        return VisionModel(name="lite0", timm_name=LITE0, weights="efficientnet_lite0_package")
    checkpoint = scratch / "random-weights.pth"
    torch.save(timm.create_model(timm_name, pretrained=False).state_dict(), checkpoint)
    return VisionModel(
        name=timm_name, timm_name=timm_name, weights="checkpoint", checkpoint_path=str(checkpoint)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--batch-size", type=int, help="default: the recording's own for the device")
    parser.add_argument("--num-workers", type=int, help="default: the recording's own for the device")
    parser.add_argument("--units", type=int, default=53, help="sampled units (the demo's 48 + 5)")
    parser.add_argument("--raw-images", type=int, default=192, help="images per raw measurement")
    parser.add_argument("--rounds", type=int, default=3, help="recordings per pool size")
    parser.add_argument(
        "--raw-every", type=int, default=4,
        help="without decoding workers: one raw batch after every this many recorded batches",
    )
    parser.add_argument("--device", default="", help="cpu, cuda; empty: settings.TORCH_DEVICE")
    parser.add_argument(
        "--model", default=LITE0,
        help=f"a timm architecture; other than {LITE0} (the offline default's ImageNet "
        "weights), it runs with random weights, which do not change its speed",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        spec = benchmark_model(args.model, Path(scratch))
        network = load_network(spec, torch.device(args.device) if args.device else None)
    default_batch_size, default_num_workers = loader_defaults(network.device)
    args.batch_size = args.batch_size or default_batch_size
    args.num_workers = default_num_workers if args.num_workers is None else args.num_workers
    units = [
        UnitRef(layer, channel)
        for layer, channel in sample_layer_channels(
            layers_of_interest(network.module, network.input_size), args.units, seeded_rng(0)
        )
    ]
    # Inputs for the raw forward: real crops, transformed once up front.
    sample = SkimageCrops(size=args.raw_images, seed=1)
    tensors = torch.stack([network.transform(sample.load(key)) for key in sample.keys()])
    batches = [network.inputs(batch) for batch in tensors.split(args.batch_size)]
    raw_forward_ips(network, batches)  # warm-up: kernel selection, allocator, clocks

    result = {
        "model": spec.timm_name,
        "device": str(network.device),
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "torch_threads": torch.get_num_threads(),
        "units": len(units),
        "rounds": args.rounds,
    }
    raw = raw_forward_ips(network, batches)
    for size in args.sizes:
        pool = SkimageCrops(size=size, seed=0)
        pool.keys()  # crop boxes (and the photos) are ready before timing, as in a render
        ratios, recordings, references, peaks_self, peaks_workers = [], [], [], [], []
        for _ in range(args.rounds):
            interleaved = InterleavedRawForward(network, batches, args.raw_every)
            with tempfile.TemporaryDirectory() as work, PeakMemory() as memory:
                start = time.perf_counter()
                record_activations(
                    network, pool, units, Path(work) / "activations.npy",
                    batch_size=args.batch_size, num_workers=args.num_workers,
                    progress=interleaved if args.num_workers == 0 else no_progress,
                )
                recording = size / (time.perf_counter() - start - interleaved.seconds)
            if args.num_workers == 0:
                reference = interleaved.ips
            else:
                # Decoding workers cannot be paused for interleaved raw batches:
                # compare with raw measurements just before and just after.
                after = raw_forward_ips(network, batches)
                reference, raw = (raw + after) / 2, after
            ratios.append(recording / reference)
            recordings.append(recording)
            references.append(reference)
            peaks_self.append(memory.peak_self - memory.baseline)
            peaks_workers.append(memory.peak_workers)
            print(
                f"pool {size}: recording {recording:.1f} images/s, raw forward {reference:.1f} "
                f"images/s, ratio {recording / reference:.3f}, peak RSS growth "
                f"{memory.peak_self - memory.baseline:.1f} MB (workers {memory.peak_workers:.0f} MB)",
                flush=True,
            )
        result[f"recording_ips_{size}"] = round(statistics.median(recordings), 2)
        result[f"raw_forward_ips_{size}"] = round(statistics.median(references), 2)
        result[f"ratio_{size}"] = round(statistics.median(ratios), 3)
        result[f"peak_rss_delta_mb_{size}"] = round(max(peaks_self), 1)
        result[f"peak_worker_rss_mb_{size}"] = round(max(peaks_workers), 1)
    result["ratio"] = result[f"ratio_{args.sizes[-1]}"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
