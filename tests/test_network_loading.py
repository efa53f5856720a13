"""Loading VisionModel rows as timm networks, their layers and channel counts."""

import resource

import pytest
import timm
import torch
from PIL import Image
from skimage import data
from timm.data import create_transform, resolve_data_config

from stimuli.models import VisionModel
from stimuli.networks import (
    Network,
    NetworkError,
    _renamed_by_position,
    channel_counts,
    default_layers,
    hooked,
    load_network,
)
from stimuli.resampling import ResizedCentreCrop

TIGER_CAT = 282


@pytest.fixture(scope="module")
def lite0():
    return load_network(
        VisionModel(name="lite0", timm_name="tf_efficientnet_lite0", weights="efficientnet_lite0_package"),
        torch.device("cpu"),
    )


@pytest.mark.slow
def test_the_offline_lite0_weights_see_chelsea_as_a_tiger_cat(lite0):
    image = lite0.transform(Image.fromarray(data.chelsea()))
    with torch.inference_mode():
        logits = lite0.module(lite0.inputs(image[None]))
    assert logits.argmax().item() == TIGER_CAT


@pytest.mark.slow
def test_lite0_layers_of_interest_start_after_the_stem_and_end_at_the_head(lite0):
    layers = default_layers(lite0)
    assert layers[:3] == ["blocks.0.0.conv_dw", "blocks.0.0.bn1", "blocks.0.0.conv_pw"]
    assert layers[-2:] == ["conv_head", "bn2"]
    assert channel_counts(lite0, ["blocks.0.0.conv_pw", "blocks.6.0", "conv_head"]) == {
        "blocks.0.0.conv_pw": 16, "blocks.6.0": 320, "conv_head": 1280,
    }


def tiny_checkpoint(tmp_path) -> tuple[VisionModel, dict]:
    torch.manual_seed(0)
    saved = timm.create_model("test_efficientnet").state_dict()
    torch.save({"state_dict": saved}, tmp_path / "weights.pth")
    spec = VisionModel(
        name="tiny", timm_name="test_efficientnet", weights="checkpoint",
        checkpoint_path=str(tmp_path / "weights.pth"),
    )
    return spec, saved


def test_a_checkpoint_is_loaded_into_the_architecture(tmp_path):
    spec, saved = tiny_checkpoint(tmp_path)
    network = load_network(spec, torch.device("cpu"))
    assert not network.module.training
    assert torch.equal(network.module.conv_stem.weight, saved["conv_stem.weight"])


def test_batched_inputs_are_normalised_as_timm_normalises(tmp_path):
    network = load_network(tiny_checkpoint(tmp_path)[0], torch.device("cpu"))
    config = resolve_data_config({}, model=network.module)
    image = Image.fromarray(data.coffee())
    pixels = create_transform(**config, use_prefetcher=True)(image)
    expected = create_transform(**config)(image)
    torch.testing.assert_close(network.inputs(pixels[None])[0], expected)


def test_a_network_resizes_and_crops_with_torch_resampling(tmp_path):
    network = load_network(tiny_checkpoint(tmp_path)[0], torch.device("cpu"))
    assert isinstance(network.transform, ResizedCentreCrop)
    assert network.transform(Image.fromarray(data.coffee())).shape == network.input_size


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "resnet.pth")
    spec = VisionModel(
        name="tiny", timm_name="test_efficientnet", weights="checkpoint",
        checkpoint_path=str(tmp_path / "resnet.pth"),
    )
    with pytest.raises(NetworkError, match="Cannot load weights"):
        load_network(spec, torch.device("cpu"))


def test_weights_paired_by_position_must_agree_in_shape():
    weights = {"a.weight": torch.zeros(3, 2), "a.bias": torch.zeros(4)}
    target = {"x.weight": torch.zeros(3, 2), "x.bias": torch.zeros(3)}
    with pytest.raises(NetworkError, match=r"a.bias \(4,\) does not match x.bias \(3,\)"):
        _renamed_by_position(weights, target, source="package.pth")


def test_weights_paired_by_position_take_the_target_names():
    weights = {"a.weight": torch.ones(3, 2)}
    renamed = _renamed_by_position(weights, {"x.weight": torch.zeros(3, 2)}, source="p")
    assert list(renamed) == ["x.weight"] and renamed["x.weight"].sum() == 6


def test_vit_layers_count_channels_on_the_last_axis():
    module = timm.create_model("test_vit").eval()
    network = Network(module, transform=None, input_size=(3, 160, 160), device=torch.device("cpu"))
    layers = default_layers(network)
    assert layers[0] == "blocks.0.mlp.act"
    assert set(channel_counts(network, layers).values()) == {module.blocks[0].mlp.fc1.out_features}


def test_hooking_an_unknown_layer_is_refused():
    module = timm.create_model("test_resnet")
    with pytest.raises(NetworkError, match="No such layers in the network: layer9"):
        with hooked(module, ["layer1", "layer9"], lambda layer, output: None):
            pass


@pytest.mark.slow
def test_forward_passes_on_the_cpu_reuse_their_buffers_instead_of_faulting_them_in(lite0):
    batch = lite0.inputs(torch.zeros((16, 3, 224, 224), dtype=torch.uint8))
    with torch.inference_mode():
        for _ in range(2):  # the heap grows to the working set
            lite0.module(batch)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            lite0.module(batch)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # glibc's default maps and unmaps every activation buffer: about 6,500 faults per image.
    assert faults / (3 * len(batch)) < 200
