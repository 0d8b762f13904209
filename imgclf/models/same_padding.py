"""TensorFlow's 'same' padding done by the convolution itself where it is symmetric.

The EfficientNet-Lite port pads each convolution's input with a ZeroPad2d of its own before
the convolution: a padded copy of the activations in every forward pass, and a cropped copy
of their gradient in every backward pass. Where the padding is the same on both sides of an
axis (every stride-1 convolution, and a stride-2 one whose input size leaves it even), the
convolution's own `padding` computes the same sums without either copy. The weights and their
names stay as they were, so checkpoints load either way.
"""

from __future__ import annotations

from torch import nn


def pad_inside_convolutions(net: nn.Module) -> int:
    """Move each symmetric `static_padding` of `net`'s 'same'-padded convolutions into the
    convolution; the number moved. Asymmetric ones (a stride-2 convolution's extra row and
    column at the end) stay where they are."""
    moved = 0
    for module in net.modules():
        padding = getattr(module, "static_padding", None)
        if not isinstance(module, nn.Conv2d) or not isinstance(padding, nn.ZeroPad2d):
            continue
        left, right, top, bottom = padding.padding
        if left == right and top == bottom and module.padding == (0, 0):
            module.padding = (top, left)
            module.static_padding = nn.Identity()
            moved += 1
    return moved
