"""Where a layer's spatial positions are: a CNN's feature map, a ViT's patch tokens.

A ViT block's output is (B, T, C): first the prefix tokens (the class token and
any register tokens; timm counts them in `num_prefix_tokens`), then one token
per image patch, row by row over the patch grid. A unit's activation over
space is its value on the patch tokens only: the prefix tokens sit at no place
in the image, and averaging them in would mix a global summary into the mean.

A CNN's output is (B, C, H, W); its positions are the H x W cells. `positions`
gives both as (B, P, C) plus the (rows, columns) grid, so that the scalar pass,
the map pass and SAE training read one layout.

    layout = token_layout(network.module)
    split = split_tokens(block_output, layout)   # .prefix (B, n_prefix, C), .patches (B, P, C), .grid
    patches, grid = positions(any_layer_output, layout)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class LayoutError(ValueError):
    """A layer output whose positions cannot be told apart; the message says why."""


@dataclass(frozen=True)
class TokenLayout:
    """How a network lays out its tokens: the prefix tokens before the patches, and the patch grid.

    grid is None when the network does not say (a ViT with a dynamic image
    size, or a module that is not a timm ViT): a square grid is inferred then.
    """

    num_prefix_tokens: int = 0
    grid: tuple[int, int] | None = None


@dataclass(frozen=True)
class SplitTokens:
    prefix: torch.Tensor  # (B, n_prefix, C): class and register tokens
    patches: torch.Tensor  # (B, P, C), P = rows * columns, row-major over the grid
    grid: tuple[int, int]


def token_layout(module: torch.nn.Module) -> TokenLayout:
    """The layout timm's ViTs declare: `num_prefix_tokens`, and the patch embedding's `grid_size`.

    Networks without them (CNNs, hand-built test modules) have no prefix tokens.
    A dynamic image size makes the grid depend on the input, so it is left to inference.
    """
    prefix = int(getattr(module, "num_prefix_tokens", 0) or 0)
    grid = None
    patch_embed = getattr(module, "patch_embed", None)
    size = getattr(patch_embed, "grid_size", None)
    if size is not None and not getattr(module, "dynamic_img_size", False):
        rows, columns = (int(v) for v in size)
        grid = (rows, columns)
    return TokenLayout(prefix, grid)


def _square(n: int) -> tuple[int, int] | None:
    side = math.isqrt(n)
    return (side, side) if side * side == n else None


def split_tokens(tokens: torch.Tensor, layout: TokenLayout) -> SplitTokens:
    """A (B, T, C) output's prefix and patch tokens (views, no copy) and the patch grid.

    Layers before the prefix tokens are added (the patch embedding) have T =
    rows * columns and no prefix; both cases are recognised from T.
    """
    if tokens.ndim != 3:
        raise LayoutError(f"Expected tokens of shape (B, T, C), got {tuple(tokens.shape)}.")
    n_tokens = tokens.shape[1]
    prefix = layout.num_prefix_tokens
    if layout.grid is not None:
        patches = layout.grid[0] * layout.grid[1]
        if n_tokens == patches + prefix:
            return SplitTokens(tokens[:, :prefix], tokens[:, prefix:], layout.grid)
        if n_tokens == patches:
            return SplitTokens(tokens[:, :0], tokens, layout.grid)
        raise LayoutError(
            f"{n_tokens} tokens fit neither a {layout.grid[0]}x{layout.grid[1]} patch grid "
            f"nor the grid with {prefix} prefix tokens."
        )
    for n_prefix in dict.fromkeys((prefix, 0)):
        grid = _square(n_tokens - n_prefix) if n_tokens > n_prefix else None
        if grid is not None:
            return SplitTokens(tokens[:, :n_prefix], tokens[:, n_prefix:], grid)
    raise LayoutError(
        f"{n_tokens} tokens ({prefix} prefix tokens) do not form a square patch grid; "
        "the network does not declare its grid (patch_embed.grid_size)."
    )


def positions(output: torch.Tensor, layout: TokenLayout) -> tuple[torch.Tensor, tuple[int, int]]:
    """A layer output as (B, P, C) values at its P spatial positions (row-major) and their grid.

    (B, C, H, W) feature maps give their H x W cells (a view when the map is
    channels last, as the networks here run); (B, T, C) tokens give their patch tokens.
    """
    if output.ndim == 4:
        batch, channels, height, width = output.shape
        return output.permute(0, 2, 3, 1).reshape(batch, height * width, channels), (height, width)
    if output.ndim == 3:
        split = split_tokens(output, layout)
        return split.patches, split.grid
    raise LayoutError(f"A layer output of shape {tuple(output.shape)} has no spatial positions.")
