"""Loss of the baseline: binary cross-entropy plus soft Dice.

Both terms take logits ``(N, C, H, W)`` and 0 / 1 targets of the same shape. The
cross-entropy is averaged over pixels; the soft Dice loss is ``1 - 2 sum(p t) /
(sum p + sum t)`` per region over the whole mini-batch (so a batch without tumor
scores 1 when it predicts none, thanks to the smoothing term), averaged over the
regions.
"""
import torch
from torch.nn import functional as F

__all__ = ["soft_dice_loss", "bce_dice_loss"]


def _check(logits, target):
    for name, t in (("logits", logits), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if logits.shape != target.shape or logits.ndim != 4:
        raise ValueError(f"target: expected the (N, C, H, W) shape of logits "
                         f"{tuple(logits.shape)}, got {tuple(target.shape)}")


def soft_dice_loss(logits, target, *, smooth=1.0):
    """``1 - (2 sum(p t) + smooth) / (sum p + sum t + smooth)``, mean over regions.

    Parameters
    ----------
    logits, target : (N, C, H, W) tensor
        ``p = sigmoid(logits)``; ``target`` holds 0 and 1.
    smooth : float, optional
        Added to numerator and denominator. Default 1.

    Returns
    -------
    0-d tensor in [0, 1]
    """
    _check(logits, target)
    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    total = p.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * inter + smooth) / (total + smooth)).mean()


def bce_dice_loss(logits, target):
    """Binary cross-entropy (from logits) plus :func:`soft_dice_loss`.

    Parameters
    ----------
    logits, target : (N, C, H, W) tensor

    Returns
    -------
    0-d tensor

    Examples
    --------
    >>> t = torch.zeros(1, 1, 4, 4); t[..., :2, :] = 1
    >>> bool(bce_dice_loss(20 * (2 * t - 1), t) < 1e-3)
    True
    """
    _check(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)
