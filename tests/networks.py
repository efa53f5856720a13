"""Networks of fixed weights whose units' activations are known by construction, and images to show them."""

from __future__ import annotations

import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer
from torchvision.transforms.functional import pil_to_tensor

from stimuli.networks import Network

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
