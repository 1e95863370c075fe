"""Batched, seeded augmentations for contrastive learning (two views of every image).

SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", Sec. 3 and Appendix A) composes a random resized
crop (with flip), colour distortion (jitter, then random grayscale) and blur.
:class:`ViewAugment` implements that family on whole batches of tensors: all
random parameters of a batch are drawn first (:meth:`ViewAugment.draw`, one
tensor per parameter, in a fixed order, from an explicit ``torch.Generator``)
and then applied (:meth:`ViewAugment.apply`) with one ``affine_grid`` /
``grid_sample`` for the geometry and a few vectorised colour operations. Drawing
and applying are separate so that membership queries can draw the parameters
of every sample once and apply them in chunks: the same seed gives the same
views whatever the chunk size.

Choices where the paper leaves room (or does not apply):

* The crop, flip and translation form one affine map sampled bilinearly; the
  crop area is uniform in ``crop_scale`` and its aspect ratio log-uniform in
  ``[3/4, 4/3]`` (as torchvision's ``RandomResizedCrop``), the crop centre is
  uniform over the positions that keep the crop inside the image.
* Colour jitter applies brightness, contrast, saturation and hue in that fixed
  order (torchvision shuffles the order); hue is a rotation of the chroma plane
  in YIQ space. Gray images get brightness and contrast only.
* No Gaussian blur: at 8x8 to 32x32 it mostly erases the image (SimCLR's CIFAR
  experiments drop it too).
* 8x8 images (``digits``) get small sub-pixel translations and Gaussian pixel
  noise instead of crops, which would remove most of such a tiny image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

# RGB -> YIQ (NTSC) and its inverse; the hue rotation turns the (I, Q) plane.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GRAY = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class ViewParams:
    """Random parameters of a batch of views (one row per view)."""

    scale_x: torch.Tensor
    scale_y: torch.Tensor
    shift_x: torch.Tensor
    shift_y: torch.Tensor
    trans_x: torch.Tensor
    trans_y: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor
    gray: torch.Tensor
    noise: torch.Tensor

    def take(self, index: slice | torch.Tensor) -> ViewParams:
        """The parameters of rows ``index``."""
        return ViewParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device) -> ViewParams:
        """The parameters on ``device``."""
        return ViewParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass(frozen=True)
class ViewAugment:
    """A SimCLR-style random view of an image batch (see the module docstring).

    Attributes:
        crop_scale: Range of the crop's area as a fraction of the image; ``(1, 1)`` = no crop.
        translate: Largest extra translation in pixels (uniform, sub-pixel, zero fill).
        flip: Flip horizontally with probability 1/2.
        jitter: Colour-jitter strength ``s``: brightness, contrast and saturation factors in
            ``[1 - 0.4 s, 1 + 0.4 s]``, hue shift in ``[-0.1 s, 0.1 s]`` turns (0 = off).
        jitter_p: Probability of applying the jitter to a view.
        gray_p: Probability of converting an RGB view to grayscale.
        noise: Standard deviation of added Gaussian pixel noise (0 = off).
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    translate: float = 0.0
    flip: bool = False
    jitter: float = 0.0
    jitter_p: float = 0.8
    gray_p: float = 0.0
    noise: float = 0.0

    def draw(self, n: int, generator: torch.Generator, shape: tuple[int, ...]) -> ViewParams:
        """Draw the parameters of ``n`` views of ``shape`` ``(c, h, w)`` images.

        The draws happen on the generator's device, one tensor per parameter in a
        fixed order, so the same generator state always gives the same views.
        """
        dev = generator.device

        def u(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)

        area = u(*self.crop_scale)
        log_ratio = u(math.log(3 / 4), math.log(4 / 3)) if self.crop_scale[0] < 1 else u(0, 0)
        sx = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)
        sy = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
        cx, cy = u(-1, 1) * (1 - sx), u(-1, 1) * (1 - sy)
        s = self.jitter
        return ViewParams(
            scale_x=sx,
            scale_y=sy,
            shift_x=cx,
            shift_y=cy,
            trans_x=u(-self.translate, self.translate),
            trans_y=u(-self.translate, self.translate),
            flip=u(0, 1) < (0.5 if self.flip else 0.0),
            jitter=u(0, 1) < (self.jitter_p if s > 0 else 0.0),
            brightness=u(1 - 0.4 * s, 1 + 0.4 * s),
            contrast=u(1 - 0.4 * s, 1 + 0.4 * s),
            saturation=u(1 - 0.4 * s, 1 + 0.4 * s),
            hue=u(-0.1 * s, 0.1 * s),
            gray=u(0, 1) < self.gray_p,
            noise=(
                torch.randn((n, *shape), generator=generator, device=dev)
                if self.noise > 0
                else torch.zeros(n, 0, device=dev)
            ),
        )

    def apply(self, x: torch.Tensor, p: ViewParams) -> torch.Tensor:
        """Apply drawn parameters ``p`` (one row per image) to images ``x`` ``(b, c, h, w)``."""
        p = p.to(x.device)
        x = self._geometry(x, p)
        if x.shape[1] == 3:
            x = _colour(x, p)
        elif self.jitter > 0:
            x = _gray_jitter(x, p)
        if self.noise > 0:
            x = x + self.noise * p.noise.to(x.dtype)
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One random view of every image of ``x``."""
        return self.apply(x, self.draw(x.shape[0], generator, tuple(x.shape[1:])))

    def _geometry(self, x: torch.Tensor, p: ViewParams) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.crop_scale == (1.0, 1.0) and self.translate == 0 and not self.flip:
            return x
        # A pixel translation is 2 / size in grid_sample's normalised coordinates.
        tx = p.shift_x + 2 * p.trans_x / w
        ty = p.shift_y + 2 * p.trans_y / h
        sign = 1 - 2 * p.flip.to(x.dtype)
        theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = p.scale_x.to(x.dtype) * sign
        theta[:, 0, 2] = tx.to(x.dtype)
        theta[:, 1, 1] = p.scale_y.to(x.dtype)
        theta[:, 1, 2] = ty.to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bchw,c->bhw", x, _GRAY.to(x.device, x.dtype))[:, None]


def _colour(x: torch.Tensor, p: ViewParams) -> torch.Tensor:
    """Colour jitter (brightness, contrast, saturation, hue) then random grayscale."""
    dt = x.dtype

    def col(v: torch.Tensor) -> torch.Tensor:
        return v.to(dt)[:, None, None, None]

    y = (x * col(p.brightness)).clamp(0, 1)
    mean = _gray(y).mean(dim=(2, 3), keepdim=True)
    y = ((y - mean) * col(p.contrast) + mean).clamp(0, 1)
    g = _gray(y)
    y = ((y - g) * col(p.saturation) + g).clamp(0, 1)
    yiq = torch.einsum("ij,bjhw->bihw", _YIQ.to(x.device, dt), y)
    ang = 2 * math.pi * p.hue.to(dt)
    cos, sin = ang.cos()[:, None, None], ang.sin()[:, None, None]
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    y = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_YIQ).to(x.device, dt), yiq).clamp(0, 1)
    x = torch.where(p.jitter[:, None, None, None], y, x)
    return torch.where(p.gray[:, None, None, None], _gray(x).expand_as(x), x)


def _gray_jitter(x: torch.Tensor, p: ViewParams) -> torch.Tensor:
    """Brightness then contrast jitter of single-channel images."""
    dt = x.dtype
    y = x * p.brightness.to(dt)[:, None, None, None]
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * p.contrast.to(dt)[:, None, None, None] + mean
    return torch.where(p.jitter[:, None, None, None], y.clamp(0, 1), x)


def default_views(shape: tuple[int, int, int], flippable: bool) -> ViewAugment:
    """Views that suit the image size and colour (see the module docstring).

    * 8x8 (or smaller than 16 px): translations up to 1 px and pixel noise 0.1.
    * gray, >= 16 px (MNIST, Fashion-MNIST): crops of 35-100% of the area, flip where
      sensible, brightness/contrast jitter 0.5.
    * RGB (CIFAR, SVHN): crops of 20-100%, flip where sensible, full colour jitter
      (strength 1, p = 0.8) and grayscale with p = 0.2 (SimCLR's CIFAR recipe).
    """
    c, h, _ = shape
    if h < 16:
        return ViewAugment(crop_scale=(1.0, 1.0), translate=1.0, flip=flippable, noise=0.1)
    if c == 3:
        return ViewAugment(crop_scale=(0.2, 1.0), flip=flippable, jitter=1.0, gray_p=0.2)
    return ViewAugment(crop_scale=(0.35, 1.0), flip=flippable, jitter=0.5)
