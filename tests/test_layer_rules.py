"""IMI's layers of interest per architecture family, on timm networks with random weights.

"Convolution and normalization layers, as well as the outputs of skip connection blocks", never
the very first convolution; the last layer of each inception block; a ViT's position-wise
feed-forward layers (Zimmermann et al. 2023). Built with pretrained=False: nothing is downloaded.
"""

import pytest
import timm
import torch

from stimuli.layers import layers_of_interest, rule_for
from stimuli.networks import architecture_layers


def imi_layers(timm_name: str, input_size: tuple[int, int, int] = (3, 224, 224)) -> dict[str, int]:
    torch.manual_seed(0)
    return layers_of_interest(timm.create_model(timm_name, pretrained=False), input_size)


@pytest.fixture(scope="module")
def resnet50() -> dict[str, int]:
    return imi_layers("resnet50")


def test_resnet50_takes_convolutions_normalisations_and_bottleneck_outputs(resnet50):
    bottleneck = [
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2", "layer1.0.conv3", "layer1.0.bn3",
        "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0",
    ]
    assert list(resnet50)[:9] == bottleneck
    assert list(resnet50)[-3:] == ["layer4.2.conv3", "layer4.2.bn3", "layer4.2"]
    # 53 convolutions and 53 batch norms, less the stem's pair, and 16 bottlenecks.
    assert len(resnet50) == 52 + 52 + 16


def test_resnet50_never_takes_its_first_convolution_nor_the_classifier(resnet50):
    assert "conv1" not in resnet50 and "bn1" not in resnet50 and "fc" not in resnet50


def test_resnet50_channels_are_the_modules_outputs(resnet50):
    assert (resnet50["layer1.0.conv1"], resnet50["layer1.0"], resnet50["layer4.2"]) == (64, 256, 2048)


def test_inception_v3_takes_the_output_of_each_inception_block():
    layers = imi_layers("inception_v3", (3, 299, 299))
    assert layers == {
        "Mixed_5b": 256, "Mixed_5c": 288, "Mixed_5d": 288, "Mixed_6a": 768, "Mixed_6b": 768, "Mixed_6c": 768,
        "Mixed_6d": 768, "Mixed_6e": 768, "Mixed_7a": 1280, "Mixed_7b": 2048, "Mixed_7c": 2048,
    }


def test_convnext_tiny_takes_convolutions_map_norms_and_block_outputs_without_its_stem():
    layers = imi_layers("convnext_tiny")
    assert list(layers)[:6] == [
        "stages.0.blocks.0.conv_dw", "stages.0.blocks.0", "stages.0.blocks.1.conv_dw", "stages.0.blocks.1",
        "stages.0.blocks.2.conv_dw", "stages.0.blocks.2",
    ]
    assert ["stages.1.downsample.0", "stages.1.downsample.1"] == [name for name in layers if "downsample" in name][:2]
    assert "stem.0" not in layers and "stem.1" not in layers
    # The head's norm runs on the pooled vector, not a map.
    assert not any(name.startswith("head") for name in layers)
    assert len(layers) == 18 * 2 + 3 * 2


def test_vit_small_takes_only_the_feed_forward_layers():
    layers = imi_layers("vit_small_patch16_224")
    assert layers == {f"blocks.{i}.mlp.act": 1536 for i in range(12)}


def test_efficientnet_skips_squeeze_excitation_and_its_stem():
    layers = imi_layers("efficientnet_b0")
    assert "conv_stem" not in layers and "bn1" not in layers
    assert not any(".se." in name for name in layers)
    assert list(layers)[:2] == ["blocks.0.0.conv_dw", "blocks.0.0.bn1"]
    assert "blocks.1.1" in layers  # an inverted residual with its skip connection


@pytest.mark.parametrize(
    ("timm_name", "family"),
    [
        ("resnet50", "convolutional"), ("convnext_tiny", "convolutional"), ("mobilenetv3_small_100", "convolutional"),
        ("inception_v3", "GoogLeNet / Inception"), ("deit_tiny_patch16_224", "ViT"),
        ("vit_base_patch16_clip_224", "ViT"),
    ],
)
def test_each_family_gets_its_rule(timm_name, family):
    assert rule_for(timm.create_model(timm_name, pretrained=False)).family.startswith(family)


def test_an_architecture_lists_its_family_and_layers_without_loading_weights():
    family, layers, prefix_tokens, _modules = architecture_layers("test_vit")
    assert family.startswith("ViT") and prefix_tokens == 1
    assert layers == {f"blocks.{i}.mlp.act": 192 for i in range(6)}
