"""Building blocks of the compressed U-Net and of the classic U-Net.

The compressed network of Niepceron et al. [1]_ replaces every 3x3 convolution of
the U-Net [2]_ by a *separable block* in the style of MobileNetV2 [3]_: a 1x1
convolution, a depthwise 3x3 convolution and a pointwise 1x1 convolution. Each of
the three sub-blocks is followed by an *independent-component* (IC) layer, a
normalisation followed by dropout, which Chen et al. [4]_ show whitens the inputs
of the next layer; Niepceron et al. use GroupNorm as the normalisation, so the
block does not depend on the mini-batch (they train with batches of 2).

Every block takes and returns ``(N, C, H, W)`` float tensors. Blocks that add or
concatenate tensors do so through :class:`torch.ao.nn.quantized.FloatFunctional`,
so the same modules run in fp32 and, after :func:`cnn_baseline.quantize.quantize_model`,
in int8.

References
----------
.. [1] B. Niepceron, A. Nait-Sidi-Moh, F. Grassia, "Moving Medical Image Analysis to
   GPU Embedded Systems: Application to Brain Tumor Segmentation", Applied
   Artificial Intelligence 34(12):866-879, 2020.
.. [2] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
   Biomedical Image Segmentation", MICCAI 2015. doi:10.1007/978-3-319-24574-4_28
.. [3] M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
   CVPR 2018. doi:10.1109/CVPR.2018.00474
.. [4] G. Chen et al., "Rethinking the Usage of Batch Normalization and Dropout in
   the Training of Deep Neural Networks", arXiv:1905.05928, 2019.
"""
import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.nn import functional as F

from pcnnseg.validation import check_int

__all__ = ["IndependentComponent", "SeparableBlock", "DoubleSeparable", "Down", "Up",
           "DoubleConv", "ClassicDown", "ClassicUp"]

#: Slope of the LeakyReLU for negative inputs (PyTorch's default).
NEGATIVE_SLOPE = 0.01


def _groups_for(channels, groups):
    """Largest divisor of ``channels`` that is at most ``groups``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


class IndependentComponent(nn.Sequential):
    """Independent-component layer: GroupNorm then Dropout.

    Parameters
    ----------
    channels : int
        Number of feature maps C.
    groups : int, optional
        GroupNorm groups, reduced to the largest divisor of ``channels`` not above
        it. Default 8.
    dropout : float, optional
        Element-wise dropout probability in [0, 1). Default 0.1.

    Notes
    -----
    Input and output: ``(N, C, H, W)``. Parameters: ``2 C`` (GroupNorm's affine
    weight and bias).
    """

    def __init__(self, channels, *, groups=8, dropout=0.1):
        channels = check_int(channels, "channels", 1)
        groups = check_int(groups, "groups", 1)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool):
            raise TypeError(f"dropout: expected a float in [0, 1), got {type(dropout).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a float in [0, 1), got {dropout}")
        super().__init__()
        self.norm = nn.GroupNorm(_groups_for(channels, groups), channels)
        self.drop = nn.Dropout2d(dropout)


class SeparableBlock(nn.Module):
    """Separable block: 1x1 conv, depthwise 3x3 conv, pointwise 1x1 conv.

    ``x -> conv1x1 -> IC -> LeakyReLU -> depthwise3x3 -> IC -> LeakyReLU ->
    pointwise1x1 -> IC (+ x when in_channels == out_channels)``.

    The 1x1 convolution maps ``in_channels`` to ``out_channels``; the depthwise
    convolution filters each map on its own (zero padding 1, so the size is kept);
    the pointwise convolution mixes the maps. The last sub-block is linear, as in
    MobileNetV2's linear bottleneck, and the input is added back (a residual
    connection) only when the shapes allow it, that is when ``in_channels ==
    out_channels``. Convolutions carry no bias: the GroupNorm that follows each
    would cancel it.

    Parameters
    ----------
    in_channels, out_channels : int
        Feature maps in and out.
    groups : int, optional
        GroupNorm groups of the IC layers. Default 8.
    dropout : float, optional
        Dropout probability of the IC layers. Default 0.1.

    Notes
    -----
    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H, W)``.
    Parameters: ``in*out + 9*out + out*out + 3 * 2*out``.
    """

    def __init__(self, in_channels, out_channels, *, groups=8, dropout=0.1):
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", 1)
        out_channels = check_int(out_channels, "out_channels", 1)
        ic = dict(groups=groups, dropout=dropout)
        self.expand = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.ic1 = IndependentComponent(out_channels, **ic)
        self.act1 = nn.LeakyReLU(NEGATIVE_SLOPE)
        self.depthwise = nn.Conv2d(out_channels, out_channels, 3, padding=1,
                                   groups=out_channels, bias=False)
        self.ic2 = IndependentComponent(out_channels, **ic)
        self.act2 = nn.LeakyReLU(NEGATIVE_SLOPE)
        self.pointwise = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.ic3 = IndependentComponent(out_channels, **ic)
        self.residual = in_channels == out_channels
        # The addition goes through FloatFunctional so that int8 models observe it.
        self.skip = FloatFunctional() if self.residual else None

    def forward(self, x):
        y = self.act1(self.ic1(self.expand(x)))
        y = self.act2(self.ic2(self.depthwise(y)))
        y = self.ic3(self.pointwise(y))
        return self.skip.add(y, x) if self.residual else y


class DoubleSeparable(nn.Sequential):
    """Two separable blocks, in place of the U-Net's two 3x3 convolutions.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``; the second block is
    residual.
    """

    def __init__(self, in_channels, out_channels, **ic):
        super().__init__()
        self.first = SeparableBlock(in_channels, out_channels, **ic)
        self.second = SeparableBlock(out_channels, out_channels, **ic)


class Down(nn.Sequential):
    """2x2 max pooling then :class:`DoubleSeparable`.

    ``(N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2)``.
    """

    def __init__(self, in_channels, out_channels, **ic):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.convs = DoubleSeparable(in_channels, out_channels, **ic)


class Up(nn.Module):
    """Bilinear upsampling to the skip connection's size, concatenation, two blocks.

    ``forward(x, skip)``: ``x`` is ``(N, in_channels, h, w)``, ``skip`` is
    ``(N, skip_channels, H, W)`` with ``H >= h``, ``W >= w`` (twice the size, or
    one more for odd sizes); ``x`` is resized to ``(H, W)`` bilinearly (no
    transposed convolution, hence no parameters), concatenated with ``skip``
    along the channels and passed through :class:`DoubleSeparable`. Output:
    ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels, skip_channels, out_channels, **ic):
        super().__init__()
        self.cat = FloatFunctional()
        self.convs = DoubleSeparable(in_channels + skip_channels, out_channels, **ic)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(self.cat.cat([skip, x], dim=1))


# ------------------------------------------------------------ classic U-Net blocks


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions (padding 1), each followed by BatchNorm and ReLU.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``; the classic U-Net
    level, with BatchNorm as most current implementations add it.
    """

    def __init__(self, in_channels, out_channels):
        in_channels = check_int(in_channels, "in_channels", 1)
        out_channels = check_int(out_channels, "out_channels", 1)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ClassicDown(nn.Sequential):
    """2x2 max pooling then :class:`DoubleConv`: ``(N, in, H, W) -> (N, out, H//2, W//2)``."""

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class ClassicUp(nn.Module):
    """2x2 transposed convolution (halving the maps), concatenation, :class:`DoubleConv`.

    ``forward(x, skip)``: ``x`` ``(N, in_channels, h, w)`` becomes ``(N,
    in_channels // 2, 2h, 2w)``, is zero-padded to ``skip``'s size for odd sizes,
    concatenated with ``skip`` ``(N, in_channels // 2, H, W)`` and convolved to
    ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.convs = DoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.convs(torch.cat([skip, x], dim=1))
