"""Spatial maps of units whose activation is known by construction, for a CNN and a ViT, and on the stimuli."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer
from torchvision.transforms.functional import pil_to_tensor

from stimuli.maps import MapRequest, on_stimulus, record_maps
from stimuli.networks import Network
from stimuli.recording import record_activations
from stimuli.resampling import ResizedCentreCrop
from stimuli.storage import resized_and_cropped
from stimuli.tokens import TokenLayout, split_tokens, token_layout
from stimuli.units import UnitRef

SIDE = 32


class SquarePool:
    """32 x 32 black images, each with one white square of `cell` pixels at the grid cell its key names."""

    def __init__(self, cell: int, cells: list[tuple[int, int]]) -> None:
        self.cell, self.cells = cell, cells

    def keys(self) -> list[str]:
        return [f"square/{row}/{column}" for row, column in self.cells]

    def load(self, key: str) -> Image.Image:
        _, row, column = key.split("/")
        image = Image.new("RGB", (SIDE, SIDE))
        x, y = int(column) * self.cell, int(row) * self.cell
        image.paste((255, 255, 255), (x, y, x + self.cell, y + self.cell))
        return image


def patch_means(stride: int) -> torch.nn.Conv2d:
    """A convolution whose channel 0 is the red mean of each stride x stride patch and channel 1 minus the green."""
    conv = torch.nn.Conv2d(3, 2, stride, stride=stride)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 1 / stride**2
        conv.weight[1, 1] = -1 / stride**2
    return conv


def cnn() -> Network:
    module = torch.nn.Sequential(patch_means(4)).eval()
    return Network(module, pil_to_tensor, (3, SIDE, SIDE), torch.device("cpu"))


def vit() -> Network:
    """A ViT whose block passes the patch embedding through: 4 x 4 patches of 8 px, a class and 2 register tokens.

    The prefix tokens are set to 100, so that a mean that counted them would be far off.
    """
    module = VisionTransformer(
        img_size=SIDE, patch_size=8, embed_dim=8, depth=1, num_heads=2, reg_tokens=2, num_classes=0
    )
    with torch.no_grad():
        module.patch_embed.proj.weight.zero_()
        module.patch_embed.proj.bias.zero_()
        module.patch_embed.proj.weight[:2] = patch_means(8).weight
        module.pos_embed.zero_()
        module.cls_token.fill_(100.0)
        module.reg_token.fill_(100.0)
        # No attention and no MLP: the block's residual stream is its input.
        for linear in (module.blocks[0].attn.proj, module.blocks[0].mlp.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
    return Network(module.eval(), pil_to_tensor, (3, SIDE, SIDE), torch.device("cpu"))


def one_hot(shape: tuple[int, int], row: int, column: int) -> np.ndarray:
    expected = np.zeros(shape, dtype=np.float32)
    expected[row, column] = 1.0
    return expected


def test_a_cnn_channel_map_is_its_feature_map_at_the_layers_resolution(tmp_path):
    pool = SquarePool(4, [(0, 0), (2, 5), (7, 3)])
    [red] = record_maps(cnn(), pool, [MapRequest(UnitRef("0", 0), tuple(pool.keys()))], tmp_path)
    assert red.maps.dtype == np.float16 and red.maps.shape == (3, 8, 8)
    np.testing.assert_array_equal(red.map_of("square/2/5"), one_hot((8, 8), 2, 5))
    np.testing.assert_array_equal(red.map_of("square/7/3"), one_hot((8, 8), 7, 3))


def test_a_vit_map_is_its_patch_grid_without_the_class_and_register_tokens(tmp_path):
    pool = SquarePool(8, [(1, 2), (3, 0)])
    [red] = record_maps(vit(), pool, [MapRequest(UnitRef("blocks.0", 0), tuple(pool.keys()))], tmp_path)
    assert red.maps.shape == (2, 4, 4)
    np.testing.assert_allclose(red.map_of("square/1/2"), one_hot((4, 4), 1, 2), atol=1e-3)
    np.testing.assert_allclose(red.map_of("square/3/0"), one_hot((4, 4), 3, 0), atol=1e-3)


def test_a_vit_units_scalar_is_the_mean_over_patch_tokens_only(tmp_path):
    pool = SquarePool(8, [(1, 2), (0, 0)])
    activations = record_activations(
        vit(), pool, [UnitRef("blocks.0", 0), UnitRef("blocks.0", 1)], tmp_path / "a.npy", batch_size=2
    )
    # One white patch of 16: red mean 1/16, minus green mean -1/16; the prefix tokens (100) left out.
    np.testing.assert_allclose(activations, [[1 / 16, -1 / 16]] * 2, atol=1e-4)


def test_max_pooling_takes_a_units_strongest_position(tmp_path):
    pool = SquarePool(4, [(3, 3)])
    activations = record_activations(cnn(), pool, [UnitRef("0", 0)], tmp_path / "a.npy", pooling="max")
    np.testing.assert_allclose(activations, [[1.0]])


def test_timm_vits_declare_their_prefix_tokens_and_grid():
    assert token_layout(vit().module) == TokenLayout(num_prefix_tokens=3, grid=(4, 4))
    assert token_layout(cnn().module) == TokenLayout()


def test_split_tokens_separates_prefix_and_patches():
    tokens = torch.arange(2 * 19 * 8, dtype=torch.float32).reshape(2, 19, 8)
    split = split_tokens(tokens, TokenLayout(3, (4, 4)))
    assert split.prefix.shape == (2, 3, 8) and split.patches.shape == (2, 16, 8) and split.grid == (4, 4)
    assert torch.equal(split.patches, tokens[:, 3:])


def test_split_tokens_recognises_a_layer_before_the_prefix_tokens_are_added():
    split = split_tokens(torch.zeros(1, 16, 8), TokenLayout(3, (4, 4)))
    assert split.prefix.shape == (1, 0, 8) and split.grid == (4, 4)


def test_split_tokens_infers_a_square_grid_when_the_network_does_not_declare_one():
    assert split_tokens(torch.zeros(1, 50, 8), TokenLayout(1, None)).grid == (7, 7)


def test_maps_are_recorded_only_for_the_images_each_unit_asks_for(tmp_path):
    pool = SquarePool(4, [(0, 0), (1, 1), (2, 2)])
    red, green = record_maps(
        cnn(),
        pool,
        [MapRequest(UnitRef("0", 0), ("square/2/2",)), MapRequest(UnitRef("0", 1), ("square/0/0", "square/2/2"))],
        tmp_path,
    )
    assert red.maps.shape == (1, 8, 8) and green.maps.shape == (2, 8, 8)
    np.testing.assert_array_equal(green.map_of("square/0/0"), -one_hot((8, 8), 0, 0))


class Crash(Exception):
    pass


def test_a_crashed_map_pass_continues_after_its_last_finished_batch(tmp_path):
    pool = SquarePool(4, [(row, row) for row in range(8)])
    request = [MapRequest(UnitRef("0", 0), tuple(pool.keys()))]

    def crash_after_first_batch(stage: str, done: int, total: int) -> None:
        if done > 0:
            raise Crash

    with pytest.raises(Crash):
        record_maps(cnn(), pool, request, tmp_path, batch_size=3, progress=crash_after_first_batch)
    assert json.loads((tmp_path / "progress.json").read_text())["done"] == 3
    calls = []
    [red] = record_maps(cnn(), pool, request, tmp_path, batch_size=3, progress=lambda *call: calls.append(call))
    assert [done for _, done, _ in calls] == [3, 6, 8]
    for row in range(8):
        np.testing.assert_array_equal(red.map_of(f"square/{row}/{row}"), one_hot((8, 8), row, row))


def framed(network: Network, shorter_side: int) -> Network:
    """The network behind a resize of the shorter side to shorter_side and a centre crop of 32."""
    transform = ResizedCentreCrop(shorter_side, (SIDE, SIDE), "bilinear", pil_to_tensor)
    return Network(network.module, transform, network.input_size, network.device, framing=transform.box)


def test_a_map_is_upsampled_onto_the_stored_stimulus_pixels_it_covers():
    # Network and stimulus see the same square: each of the 8 x 8 cells covers 28 x 28 stimulus pixels.
    network = framed(cnn(), SIDE)
    upsampled = on_stimulus(one_hot((8, 8), 2, 5), (64, 48), network, resize_to=224, size=224)
    assert upsampled.shape == (224, 224) and upsampled.dtype == np.float32
    peak = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert 2 * 28 <= peak[0] < 3 * 28 and 5 * 28 <= peak[1] < 6 * 28
    assert upsampled[2 * 28 + 14, 5 * 28 + 14] > 0.95
    assert upsampled[:28].max() == 0 and upsampled[:, 7 * 28 :].max() == 0


def test_stimulus_pixels_the_network_did_not_see_get_zero():
    # The network resizes a 40 px image to 40 and crops the centre 32 (4 px cut on each side);
    # the stimulus shows all 40 px, at 80 px.
    network = framed(cnn(), 40)
    upsampled = on_stimulus(np.ones((8, 8), np.float32), (40, 40), network, resize_to=80, size=80)
    assert upsampled[:8].max() == 0 and upsampled[:, -8:].max() == 0
    assert upsampled[8:-8, 8:-8].min() == 1.0


def test_the_upsampled_map_lands_on_the_square_of_the_stored_stimulus(tmp_path):
    network = framed(cnn(), SIDE)
    pool = SquarePool(4, [(6, 1)])
    [red] = record_maps(network, pool, [MapRequest(UnitRef("0", 0), ("square/6/1",))], tmp_path)
    original = pool.load("square/6/1")
    upsampled = on_stimulus(red.map_of("square/6/1"), original.size, network, resize_to=64, size=64)
    stimulus = np.asarray(resized_and_cropped(original, 64, 64))[..., 0]
    white = stimulus > 128
    assert upsampled[white].mean() > 0.5 > upsampled[~white].max()
