"""Recording activations: per-channel means streamed to disk, resumable after a crash."""

import json

import numpy as np
import pytest
import torch
from billiard.pool import Pool
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from stimuli.networks import Network
from stimuli.pools import PoolError
from stimuli.recording import loader_defaults, record_activations
from stimuli.unitrefs import UnitRef


class ColourPool:
    """n solid images whose colour encodes the index."""

    def __init__(self, n: int) -> None:
        self.n = n

    def keys(self) -> list[str]:
        return [f"colour/{i}" for i in range(self.n)]

    def load(self, key: str) -> Image.Image:
        i = int(key.split("/")[1])
        return Image.new("RGB", (8, 8), (i % 256, (3 * i) % 256, (7 * i) % 256))


class PoolWithABrokenImage(ColourPool):
    def load(self, key: str) -> Image.Image:
        if key == "colour/13":
            raise PoolError(f"Cannot read image {key!r}: truncated")
        return super().load(key)


class TokenLayer(torch.nn.Module):
    """(B, C, H, W) -> (B, H*W, C), as a ViT block's output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class CountingNet(torch.nn.Sequential):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(
            torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3), TokenLayer()
        )
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(x)
        return super().forward(x)


def float_tensor(image: Image.Image) -> torch.Tensor:
    return pil_to_tensor(image).float() / 255


UNITS = [UnitRef("2", 5), UnitRef("0", 1), UnitRef("3", 2), UnitRef("2", 0)]


@pytest.fixture
def network() -> Network:
    return Network(CountingNet().eval(), pil_to_tensor, (3, 8, 8), torch.device("cpu"))


def expected(network: Network, pool: ColourPool) -> np.ndarray:
    images = torch.stack([float_tensor(pool.load(key)) for key in pool.keys()])
    conv0 = network.module[0](images)
    conv2 = network.module[2](network.module[1](conv0))
    tokens = network.module[3](conv2)
    return torch.stack(
        [conv2[:, 5].mean((1, 2)), conv0[:, 1].mean((1, 2)), tokens[:, :, 2].mean(1), conv2[:, 0].mean((1, 2))],
        dim=1,
    ).detach().numpy()


def record(network, pool, path, **options):
    options = {"batch_size": 8, "num_workers": 0, **options}
    return record_activations(network, pool, UNITS, path, identity="counting", **options)


def test_rows_are_channel_means_in_pool_and_unit_order(network, tmp_path):
    pool = ColourPool(20)
    activations = record(network, pool, tmp_path / "a.npy")
    assert activations.dtype == np.float32 and activations.shape == (20, 4)
    np.testing.assert_allclose(activations, expected(network, pool), rtol=1e-5, atol=1e-6)


def test_decoding_workers_give_the_same_rows(network, tmp_path):
    pool = ColourPool(20)
    in_process = np.array(record(network, pool, tmp_path / "a.npy"))
    with_workers = np.array(record(network, pool, tmp_path / "b.npy", num_workers=2))
    np.testing.assert_array_equal(in_process, with_workers)


def test_progress_counts_recorded_images(network, tmp_path):
    calls = []
    record(network, ColourPool(20), tmp_path / "a.npy", progress=lambda *call: calls.append(call))
    assert calls == [("recording activations", done, 20) for done in (0, 8, 16, 20)]


class Crash(Exception):
    pass


def crash_after_first_batch(stage: str, done: int, total: int) -> None:
    if done > 0:
        raise Crash


def test_a_crashed_run_leaves_its_finished_batches_marked(network, tmp_path):
    with pytest.raises(Crash):
        record(network, ColourPool(20), tmp_path / "a.npy", progress=crash_after_first_batch)
    marker = json.loads((tmp_path / "a.progress.json").read_text())
    assert marker["done"] == 8


def test_a_rerun_continues_after_the_last_finished_batch(network, tmp_path):
    pool = ColourPool(20)
    with pytest.raises(Crash):
        record(network, pool, tmp_path / "a.npy", progress=crash_after_first_batch)
    network.module.images_seen = 0
    activations = record(network, pool, tmp_path / "a.npy")
    assert network.module.images_seen == 12
    np.testing.assert_allclose(activations, expected(network, pool), rtol=1e-5, atol=1e-6)


def test_a_finished_recording_is_not_recomputed(network, tmp_path):
    pool = ColourPool(20)
    record(network, pool, tmp_path / "a.npy")
    network.module.images_seen = 0
    record(network, pool, tmp_path / "a.npy")
    assert network.module.images_seen == 0


def test_a_recording_for_other_units_starts_over(network, tmp_path):
    pool = ColourPool(20)
    record(network, pool, tmp_path / "a.npy")
    network.module.images_seen = 0
    activations = record_activations(
        network, pool, [UnitRef("0", 0)], tmp_path / "a.npy", identity="counting", batch_size=8,
        num_workers=0,
    )
    assert network.module.images_seen == 20 and activations.shape == (20, 1)


def test_an_unreadable_image_stops_the_recording_naming_it_after_the_batches_before_it(
    network, tmp_path
):
    with pytest.raises(PoolError, match="colour/13"):
        record(network, PoolWithABrokenImage(20), tmp_path / "a.npy")
    assert json.loads((tmp_path / "a.progress.json").read_text())["done"] == 8


def _gpu_decoding_workers(_: object = None) -> int:
    return loader_defaults(torch.device("cuda"))[1]


def test_a_celery_prefork_child_decodes_gpu_batches_in_process():
    """Its processes are daemonic: a DataLoader there with decoding processes fails to start them."""
    pool = Pool(1)  # what Celery's prefork pool runs tasks in
    try:
        [in_child] = pool.map(_gpu_decoding_workers, [None])
    finally:
        pool.terminate()
    assert in_child == 0 and _gpu_decoding_workers() >= 1
