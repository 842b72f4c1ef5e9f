"""The compressed U-Net of Niepceron et al. (2020) and the classic U-Net it shrinks.

Both take ``(N, 4, H, W)`` float tensors, the four BraTS sequences (FLAIR, T1,
T1c, T2) normalised to [0, 1], with ``H, W >= 16`` (four 2x2 poolings), odd sizes
included, and return ``(N, out_channels, H, W)`` probabilities (sigmoid);
``logits`` gives the values before the sigmoid, which the loss uses.
"""
import torch
from torch import nn
from torch.ao.quantization import DeQuantStub, QuantStub

from cnn_baseline.blocks import (ClassicDown, ClassicUp, DoubleConv, DoubleSeparable, Down,
                                 Up)
from pcnnseg.validation import check_int

__all__ = ["CompressedUNet", "UNet", "count_parameters", "count_macs", "MIN_SIZE"]

#: Smallest height / width accepted: four 2x2 poolings need 16 pixels.
MIN_SIZE = 16


def count_parameters(module, *, trainable_only=False):
    """Number of parameters (scalars) of a module.

    Parameters
    ----------
    module : torch.nn.Module
    trainable_only : bool, optional
        Count only parameters with ``requires_grad``. Default False.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``module`` is not a :class:`torch.nn.Module`.

    Examples
    --------
    >>> count_parameters(torch.nn.Conv2d(4, 8, 1, bias=False))
    32
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model, size=128):
    """Multiply-accumulates of the convolutions for one ``size x size`` slice.

    Counted from the network by running it on zeros: a ``Conv2d`` with output
    ``(C_out, H', W')`` does ``C_out H' W' (C_in / groups) k_h k_w`` MACs; a
    ``ConvTranspose2d`` does ``C_in H W (C_out / groups) k_h k_w`` for its input
    ``(C_in, H, W)``. Normalisation, activations, pooling and upsampling (a few
    operations per value, not per weight) are not counted.

    Parameters
    ----------
    model : torch.nn.Module
        A network with fp32 convolutions taking ``(N, in_channels, H, W)``
        (count an int8 network on its fp32 original: same layers).
    size : int, optional
        Slice height and width. Default 128, the training size.

    Returns
    -------
    int

    Examples
    --------
    >>> count_macs(torch.nn.Conv2d(4, 8, 3, padding=1), size=16)
    73728
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    size = check_int(size, "size", 1)
    total = 0

    def conv(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += out.numel() * (mod.in_channels // mod.groups) * k

    def transposed(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += inp[0].numel() * (mod.out_channels // mod.groups) * k

    handles = [m.register_forward_hook(conv) for m in model.modules()
               if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(transposed) for m in model.modules()
                if isinstance(m, nn.ConvTranspose2d)]
    in_channels = getattr(model, "config", {}).get("in_channels") or next(
        m.in_channels for m in model.modules() if isinstance(m, (nn.Conv2d,
                                                                 nn.ConvTranspose2d)))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, in_channels, size, size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return int(total)


def _check_input(x, in_channels):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"x: expected a (N, {in_channels}, H, W) tensor, got shape "
                         f"{tuple(x.shape)}")
    if x.shape[-2] < MIN_SIZE or x.shape[-1] < MIN_SIZE:
        raise ValueError(f"x: expected H and W of at least {MIN_SIZE} (four 2x2 poolings), "
                         f"got {tuple(x.shape[-2:])}")


def _check_config(in_channels, out_channels, channels):
    check_int(in_channels, "in_channels", 1)
    check_int(out_channels, "out_channels", 1)
    channels = tuple(channels)
    if len(channels) != 5:
        raise ValueError(f"channels: expected 5 widths (4 levels and the bottleneck), got "
                         f"{len(channels)}")
    return channels


class _UNetBase(nn.Module):
    """The encoder-decoder pass shared by both networks.

    Subclasses define ``inc``, ``down1..4``, ``up1..4`` and ``head``.
    """

    def _encode_decode(self, x):
        return self._from_first_level(self.inc(x))

    def _from_first_level(self, x1):
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        return self.head(y)

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


class CompressedUNet(_UNetBase):
    """U-Net with separable blocks, bilinear upsampling and a bottleneck capped at 512.

    Encoder ``channels[0..3]`` with 2x2 max pooling between levels, bottleneck
    ``min(channels[4], 512)``, decoder mirrored with bilinear upsampling and skip
    concatenation; each level is two :class:`~cnn_baseline.blocks.SeparableBlock`
    (1x1, depthwise 3x3, pointwise 1x1, each followed by GroupNorm + Dropout),
    and a 1x1 convolution gives one map per output region [1]_.

    With the defaults (widths 32-64-128-320, bottleneck 512, 4 inputs, 1 output)
    the network has 2,132,001 parameters (``count_parameters``), against
    31,038,209 for :class:`UNet`; the paper reports about 2.1 million against 31
    million. The paper's per-level widths are not reproduced here; these were
    chosen to match its parameter count with the 512-map bottleneck (doubling
    widths 32-64-128-256-512 give 1.79 million, 40-80-160-320-512 give 2.25).

    Parameters
    ----------
    in_channels : int, optional
        Input maps, default 4 (FLAIR, T1, T1c, T2).
    out_channels : int, optional
        Output maps, default 1 (whole tumor); 3 for whole tumor, tumor core and
        enhancing tumor.
    channels : sequence of 5 int, optional
        Widths of the four levels and the bottleneck; the bottleneck is capped at
        512. Default ``(32, 64, 128, 320, 512)``.
    groups : int, optional
        GroupNorm groups. Default 8.
    dropout : float, optional
        Dropout of the independent-component layers. Default 0.1.

    Notes
    -----
    ``forward(x)``: ``x`` ``(N, in_channels, H, W)`` float, ``H, W >= 16``;
    returns ``(N, out_channels, H, W)`` probabilities in [0, 1]. Quantization
    stubs mark where an int8 model quantizes (after the first level) and
    dequantizes its logits; in fp32 they are identities.

    References
    ----------
    .. [1] B. Niepceron, A. Nait-Sidi-Moh, F. Grassia, Applied Artificial
       Intelligence 34(12):866-879, 2020.

    Examples
    --------
    >>> net = CompressedUNet().eval()
    >>> net(torch.zeros(1, 4, 97, 131)).shape
    torch.Size([1, 1, 97, 131])
    """

    def __init__(self, in_channels=4, out_channels=1, *, channels=(32, 64, 128, 320, 512),
                 groups=8, dropout=0.1):
        super().__init__()
        c = _check_config(in_channels, out_channels, channels)
        c = c[:4] + (min(c[4], 512),)
        ic = dict(groups=groups, dropout=dropout)
        self.config = dict(in_channels=in_channels, out_channels=out_channels, channels=c,
                           groups=groups, dropout=dropout)
        self.quant = QuantStub()
        self.inc = DoubleSeparable(in_channels, c[0], **ic)
        self.down1 = Down(c[0], c[1], **ic)
        self.down2 = Down(c[1], c[2], **ic)
        self.down3 = Down(c[2], c[3], **ic)
        self.down4 = Down(c[3], c[4], **ic)
        self.up1 = Up(c[4], c[3], c[3], **ic)
        self.up2 = Up(c[3], c[2], c[2], **ic)
        self.up3 = Up(c[2], c[1], c[1], **ic)
        self.up4 = Up(c[1], c[0], c[0], **ic)
        self.head = nn.Conv2d(c[0], out_channels, 1)
        self.dequant = DeQuantStub()

    def logits(self, x):
        """Values before the sigmoid, ``(N, out_channels, H, W)``."""
        _check_input(x, self.config["in_channels"])
        # An int8 model quantizes after the first level, which stays in float: see
        # cnn_baseline.quantize.
        return self.dequant(self._from_first_level(self.quant(self.inc(x))))


class UNet(_UNetBase):
    """The classic U-Net of Ronneberger et al. (2015), for the size comparison.

    Widths 64-128-256-512-1024, two 3x3 convolutions (BatchNorm, ReLU) per level,
    2x2 max pooling down, 2x2 transposed convolutions up, 1x1 output
    convolution: 31,038,209 parameters with 4 inputs and 1 output.

    Parameters
    ----------
    in_channels, out_channels : int, optional
        Default 4 and 1.
    channels : sequence of 5 int, optional
        Default ``(64, 128, 256, 512, 1024)``.

    Notes
    -----
    ``forward(x)``: ``(N, in_channels, H, W)``, ``H, W >= 16`` ->
    ``(N, out_channels, H, W)`` probabilities.
    """

    def __init__(self, in_channels=4, out_channels=1, *, channels=(64, 128, 256, 512, 1024)):
        super().__init__()
        c = _check_config(in_channels, out_channels, channels)
        self.config = dict(in_channels=in_channels, out_channels=out_channels, channels=c)
        self.inc = DoubleConv(in_channels, c[0])
        self.down1 = ClassicDown(c[0], c[1])
        self.down2 = ClassicDown(c[1], c[2])
        self.down3 = ClassicDown(c[2], c[3])
        self.down4 = ClassicDown(c[3], c[4])
        self.up1 = ClassicUp(c[4], c[3])
        self.up2 = ClassicUp(c[3], c[2])
        self.up3 = ClassicUp(c[2], c[1])
        self.up4 = ClassicUp(c[1], c[0])
        self.head = nn.Conv2d(c[0], out_channels, 1)

    def logits(self, x):
        """Values before the sigmoid, ``(N, out_channels, H, W)``."""
        _check_input(x, self.config["in_channels"])
        return self._encode_decode(x)
