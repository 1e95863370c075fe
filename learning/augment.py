"""Batched, seeded image augmentation on tensors (no per-sample Python, no PIL).

Training augmentation draws one random crop offset (and flip) per sample from
an explicit ``torch.Generator`` living on the data's device, so a whole batch is
augmented with two gathers. Query augmentation (used by membership attacks) is
deterministic: the identity, the flip where the data allows it, then one-pixel
shifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def default_padding(height: int) -> int:
    """Crop padding that suits the image size: 1 for 8x8, 3 for 28x28, 4 for 32x32."""
    return max(1, height // 8)


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Translate each image of ``x`` by its own ``(dy, dx)`` pixels, zero-filling.

    Args:
        x: Images ``(b, c, h, w)``.
        dy: Vertical shifts ``(b,)`` in ``[-pad, pad]`` (positive moves content down).
        dx: Horizontal shifts ``(b,)`` in ``[-pad, pad]`` (positive moves content right).
        pad: Maximum absolute shift.
    """
    b, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = (pad - dy)[:, None] + torch.arange(h, device=x.device)
    cols = (pad - dx)[:, None] + torch.arange(w, device=x.device)
    xr = xp.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return xr.gather(3, cols[:, None, None, :].expand(b, c, h, w))


@dataclass(frozen=True)
class Augment:
    """Random crop with zero padding (a random translation) and an optional flip.

    Attributes:
        padding: Maximum translation in pixels (0 disables the crop).
        flip: Whether to flip horizontally with probability 1/2.
    """

    padding: int = 1
    flip: bool = False

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        if self.padding > 0:
            span = 2 * self.padding + 1
            dy = torch.randint(0, span, (b,), generator=generator, device=x.device) - self.padding
            dx = torch.randint(0, span, (b,), generator=generator, device=x.device) - self.padding
            x = shift(x, dy, dx, self.padding)
        if self.flip:
            mask = torch.rand(b, generator=generator, device=x.device) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        return x


def query_views(x: torch.Tensor, n_queries: int, flippable: bool) -> list[torch.Tensor]:
    """Deterministic augmented copies of ``x`` for membership queries.

    The first view is always the identity. Then, if ``flippable``, the flipped
    image; then one-pixel shifts (down, up, right, left, and diagonals), and
    their flipped versions when flippable, until ``n_queries`` views exist.
    """
    if n_queries < 1:
        raise ValueError("n_queries must be >= 1")
    b = x.shape[0]
    offsets = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)]
    views = [x]
    if flippable:
        views.append(x.flip(3))
    for dy, dx in offsets:
        if len(views) >= n_queries:
            break
        ty = torch.full((b,), dy, device=x.device)
        tx = torch.full((b,), dx, device=x.device)
        moved = shift(x, ty, tx, 1)
        views.append(moved)
        if flippable and len(views) < n_queries:
            views.append(moved.flip(3))
    if len(views) < n_queries:
        raise ValueError(f"at most {len(views)} query views are defined, asked for {n_queries}")
    return views[:n_queries]
