"""SAE training against the forward pass that produces its tokens, and the map pass against the scalar pass.

In one process, on one model, layer and device, several rounds of:
- raw forward: tokens/s the network's forward pass produces at the layer
  (images/s of the module alone on pre-made, normalised inputs, times the
  layer's positions per image);
- SAE training: tokens/s of stimuli.sae.train_sae over the recorded tokens
  (every epoch's tokens counted), with the demo's dictionary size and k;
- scalar pass: images/s of stimuli.recording.record_activations for --units
  channels on --images images;
- map pass: images/s of stimuli.maps.record_maps for the same units, each on
  every one of those images (the most a study asks for).
The measurements alternate within each round, so that a shared machine's
drift falls on both sides of each ratio; each figure is the median over rounds.

Prints one line per measurement, then one JSON object as the last line:
`ratio` (training tokens/s / forward tokens/s; target >= 1.0) and `ratio_maps`
(map pass / scalar pass; target >= 0.8), with the throughputs behind them.

    .venv/bin/python benchmarks/train_sae.py [--images 200] [--rounds 3] [--layer blocks.5]
        [--latents 384] [--k 8] [--epochs 2] [--units 20] [--device cpu]

No database is touched; Django is set up only for settings and models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "psyplatform.settings")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402

from stimuli.layers import layers_of_interest  # noqa: E402
from stimuli.maps import MapRequest, record_maps  # noqa: E402
from stimuli.models import VisionModel  # noqa: E402
from stimuli.networks import Network, load_network  # noqa: E402
from stimuli.pools import SkimageCrops  # noqa: E402
from stimuli.recording import loader_defaults, record_activations  # noqa: E402
from stimuli.sae import SaeConfig, normalisation, record_tokens, token_shape, train_sae  # noqa: E402
from stimuli.sampling import sample_layer_channels, seeded_rng  # noqa: E402
from stimuli.unitrefs import UnitRef  # noqa: E402


def raw_forward_ips(network: Network, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            network.module(batch)
    return sum(len(batch) for batch in batches) / (time.perf_counter() - start)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer", default="blocks.5")
    parser.add_argument("--latents", type=int, default=384)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--device", default="")
    args = parser.parse_args()

    spec = VisionModel(
        name="lite0", timm_name="tf_efficientnet_lite0", weights=VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE
    )
    network = load_network(spec, torch.device(args.device) if args.device else None)
    batch_size, _ = loader_defaults(network.device)
    pool = SkimageCrops(size=args.images, seed=0)
    keys = pool.keys()
    positions_per_image, dim = token_shape(network, args.layer)
    tensors = torch.stack([network.transform(pool.load(key)) for key in keys])
    batches = [network.inputs(batch) for batch in tensors.split(batch_size)]
    raw_forward_ips(network, batches[:2])  # warm-up: kernel selection, allocator, clocks
    units = [
        UnitRef(layer, channel)
        for layer, channel in sample_layer_channels(
            layers_of_interest(network.module, network.input_size), args.units, seeded_rng(0)
        )
    ]
    config = SaeConfig(n_latents=args.latents, k=args.k, epochs=args.epochs, batch_size=1024)
    forward, training, scalar, maps = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        tokens = record_tokens(network, pool, keys, args.layer, work / "tokens.npy")
        norm = normalisation(tokens)
        for round_ in range(args.rounds):
            forward.append(raw_forward_ips(network, batches) * positions_per_image)
            start = time.perf_counter()
            train_sae(tokens, norm, config, work / f"checkpoint-{round_}.pt", device=network.device)
            training.append(len(tokens) * config.epochs / (time.perf_counter() - start))
            forward.append(raw_forward_ips(network, batches) * positions_per_image)
            start = time.perf_counter()
            record_activations(network, pool, units, work / f"scalars-{round_}.npy")
            scalar.append(len(keys) / (time.perf_counter() - start))
            start = time.perf_counter()
            record_maps(network, pool, [MapRequest(unit, tuple(keys)) for unit in units], work / f"maps-{round_}")
            maps.append(len(keys) / (time.perf_counter() - start))
            print(
                f"round {round_}: forward {forward[-1]:.0f} tokens/s, training {training[-1]:.0f} tokens/s, "
                f"scalar pass {scalar[-1]:.1f} images/s, map pass {maps[-1]:.1f} images/s",
                flush=True,
            )
    result = {
        "model": spec.timm_name,
        "layer": args.layer,
        "device": str(network.device),
        "torch_threads": torch.get_num_threads(),
        "images": args.images,
        "tokens": int(len(keys) * positions_per_image),
        "dim": dim,
        "latents": args.latents,
        "k": args.k,
        "epochs": args.epochs,
        "units": len(units),
        "rounds": args.rounds,
        "forward_tokens_per_s": median(forward),
        "training_tokens_per_s": median(training),
        "scalar_images_per_s": median(scalar),
        "map_images_per_s": median(maps),
        # Each training run against the mean of the forward measurements just before and after it.
        "ratio": median([t / statistics.mean(forward[2 * r : 2 * r + 2]) for r, t in enumerate(training)]),
        "ratio_maps": median([m / s for m, s in zip(maps, scalar, strict=True)]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
