"""The layers of interest IMI samples units from (Zimmermann et al. 2023, "Selecting Units").

"The layers of interest are convolution and normalization layers, as well as the outputs of skip
connection blocks. We avoid the very first convolution layers [...]. For GoogLeNet, we select only
from the last layers of each inception block [...]. For the ViT models, [...] only inspect the
position-wise feedforward layers."

One rule per architecture family, registered in RULES and tried in order; the first whose
`matches` accepts a timm module names its candidate modules. Candidates are then kept only where
one forward pass of a dummy image shows a map (more than one position) or a token sequence, which
drops what runs on pooled vectors (squeeze-excitation gates, a MobileNetV3's conv_head, heads).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers import LayerNorm2d

# Normalisations of a (B, C, H, W) map. timm's BatchNormAct2d derives from BatchNorm2d.
# A plain LayerNorm inside a ConvNeXt block runs on a channels-last copy, whose layout a hook
# cannot tell from its shape; that block's output (a skip connection's) is a candidate instead.
MAP_NORMS = (torch.nn.BatchNorm2d, LayerNorm2d, torch.nn.GroupNorm, torch.nn.InstanceNorm2d)
# Blocks ending in a skip connection, by class name (timm's ResNet and ConvNeXt blocks);
# EfficientNet and MobileNet blocks say so themselves with `has_skip`.
SKIP_BLOCKS = frozenset({"BasicBlock", "Bottleneck", "ConvNeXtBlock"})
# GoogLeNet/Inception blocks (timm's InceptionV3 A-E, InceptionV4's blocks and reductions).
INCEPTION_BLOCK = re.compile(r"^(Inception[A-Z]|Reduction[A-Z]|Mixed\d[a-z])$")


class LayerRuleError(Exception):
    """No rule gives layers for this network; its layers of interest must be configured."""


@dataclass(frozen=True)
class LayerRule:
    family: str
    matches: Callable[[torch.nn.Module], bool]
    candidates: Callable[[torch.nn.Module], list[str]]


def _head_prefix(module: torch.nn.Module) -> str:
    """The classifier's top-level module (e.g. `fc`, `head`), whose modules run on pooled vectors."""
    classifier = getattr(module, "pretrained_cfg", {}).get("classifier") or ""
    return str(classifier).split(".")[0]


def _outside_head(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    head = _head_prefix(module)
    return [
        (name, child)
        for name, child in module.named_modules()
        if name and not (head and (name == head or name.startswith(head + ".")))
    ]


def _is_skip_block(child: torch.nn.Module) -> bool:
    return type(child).__name__ in SKIP_BLOCKS or bool(getattr(child, "has_skip", False))


def convolutional_candidates(module: torch.nn.Module) -> list[str]:
    """Convolutions, map normalisations and skip-connection blocks, in module order, without the
    first convolution and the normalisation right after it (the same channels, rescaled)."""
    named = _outside_head(module)
    first_conv = next((i for i, (_, child) in enumerate(named) if isinstance(child, torch.nn.Conv2d)), None)
    stem = set()
    if first_conv is not None:
        stem.add(first_conv)
        following = first_conv + 1
        if following < len(named) and isinstance(named[following][1], MAP_NORMS):
            stem.add(following)
    return [
        name
        for i, (name, child) in enumerate(named)
        if i not in stem and (isinstance(child, (torch.nn.Conv2d, *MAP_NORMS)) or _is_skip_block(child))
    ]


def inception_candidates(module: torch.nn.Module) -> list[str]:
    """The output of each inception block (the concatenation of its branches)."""
    return [name for name, child in _outside_head(module) if INCEPTION_BLOCK.match(type(child).__name__)]


def transformer_candidates(module: torch.nn.Module) -> list[str]:
    """Each block's position-wise feed-forward layer: its hidden units after the nonlinearity
    (`blocks.i.mlp.act`), the expansion Ghiasi et al. found interpretable."""
    return [f"blocks.{name}.mlp.act" for name, _ in module.get_submodule("blocks").named_children()]


def _is_transformer(module: torch.nn.Module) -> bool:
    blocks = getattr(module, "blocks", None)
    return (
        hasattr(module, "num_prefix_tokens")
        and isinstance(blocks, torch.nn.Sequential | torch.nn.ModuleList)
        and len(blocks) > 0
        and all(hasattr(getattr(block, "mlp", None), "act") for block in blocks)
    )


def _has_inception_blocks(module: torch.nn.Module) -> bool:
    return any(INCEPTION_BLOCK.match(type(child).__name__) for child in module.modules())


def _has_convolutions(module: torch.nn.Module) -> bool:
    return any(isinstance(child, torch.nn.Conv2d) for child in module.modules())


# Tried in order: a ViT's patch embedding is a convolution, and inception blocks are made of them.
RULES: list[LayerRule] = [
    LayerRule("ViT / DeiT / CLIP-ViT", _is_transformer, transformer_candidates),
    LayerRule("GoogLeNet / Inception", _has_inception_blocks, inception_candidates),
    LayerRule("convolutional (ResNet-like, ConvNeXt, EfficientNet / MobileNet)", _has_convolutions,
              convolutional_candidates),
]


def rule_for(module: torch.nn.Module) -> LayerRule:
    for rule in RULES:
        if rule.matches(module):
            return rule
    raise LayerRuleError(
        f"No layer rule fits {type(module).__name__}; configure the model's layers of interest."
    )


def output_shapes(module: torch.nn.Module, names: list[str], input_size: tuple[int, ...]) -> dict[str, torch.Size]:
    """Each named module's output shape on one dummy image, in the order the outputs are computed
    (a block after the layers inside it), which is their order in depth."""
    modules = dict(module.named_modules())
    shapes: dict[str, torch.Size] = {}

    def record(name: str, output: torch.Tensor) -> None:
        shapes.setdefault(name, output.shape)  # a hook returning a value would replace the output

    handles = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: record(name, out)) for name in names
    ]
    try:
        with torch.inference_mode():
            device = next(module.parameters()).device
            module.eval()(torch.zeros((1, *input_size), device=device))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def output_channels(module: torch.nn.Module, names: list[str], input_size: tuple[int, ...]) -> dict[str, int]:
    """Channels of each named module's output on one dummy image, for those whose output is a map
    with more than one position (B, C, H, W) or a token sequence (B, tokens, C), in depth order."""
    channels = {}
    for name, shape in output_shapes(module, names, input_size).items():
        if len(shape) == 4 and shape[2] * shape[3] > 1:
            channels[name] = int(shape[1])
        elif len(shape) == 3:
            channels[name] = int(shape[2])
    return channels


def layers_of_interest(module: torch.nn.Module, input_size: tuple[int, ...]) -> dict[str, int]:
    """IMI's layers of interest of a timm network and their channels, in module order."""
    rule = rule_for(module)
    layers = output_channels(module, rule.candidates(module), input_size)
    if not layers:
        raise LayerRuleError(f"The {rule.family} rule finds no layers in {type(module).__name__}.")
    return layers
