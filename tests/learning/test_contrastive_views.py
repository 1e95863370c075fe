"""Batched contrastive views: determinism, chunk invariance, exact geometry, colour ranges."""

import pytest
import torch

from unlearn_audit.learning.augment import shift
from unlearn_audit.learning.views import ViewAugment, default_views

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _imgs(c=1, h=8, n=6, seed=0):
    return torch.rand(n, c, h, h, generator=torch.Generator().manual_seed(seed))


def test_identity_settings_leave_images_unchanged():
    x = _imgs(3, 16)
    aug = ViewAugment(crop_scale=(1.0, 1.0))
    assert torch.equal(aug(x, torch.Generator().manual_seed(0)), x)


def test_same_seed_same_views_and_chunks_do_not_matter():
    x = _imgs(3, 16, n=10)
    aug = default_views((3, 16, 16), flippable=True)
    a = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(6)))
    p = aug.draw(10, torch.Generator().manual_seed(5), (3, 16, 16))
    parts = [aug.apply(x[s : s + 3], p.take(slice(s, s + 3))) for s in range(0, 10, 3)]
    torch.testing.assert_close(torch.cat(parts), aug.apply(x, p))


def test_flip_and_whole_pixel_translation_are_exact():
    x = _imgs(1, 8, n=4)
    aug = ViewAugment(crop_scale=(1.0, 1.0), translate=1.0, flip=True)
    p = aug.draw(4, torch.Generator().manual_seed(0), (1, 8, 8))
    p = type(p)(
        **{
            **p.__dict__,
            "flip": torch.tensor([False, True, False, False]),
            "trans_x": torch.tensor([0.0, 0.0, 1.0, 0.0]),
            "trans_y": torch.tensor([0.0, 0.0, 0.0, -1.0]),
        }
    )
    out = aug.apply(x, p)
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[1], x[1].flip(2))
    one, zero = torch.ones(1), torch.zeros(1)
    # grid_sample reads the input at +1 px: the content moves left, zero-filled on the right
    torch.testing.assert_close(
        out[2:3], shift(x[2:3], zero.long(), -one.long(), 1), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        out[3:4], shift(x[3:4], one.long(), zero.long(), 1), atol=1e-6, rtol=0
    )


def test_crops_zoom_in_and_colour_stays_in_range():
    x = _imgs(3, 32, n=64)
    aug = ViewAugment(crop_scale=(0.2, 0.2), jitter=1.0, jitter_p=1.0, gray_p=0.5)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    p = aug.draw(64, torch.Generator().manual_seed(0), (3, 32, 32))
    assert torch.allclose(p.scale_x * p.scale_y, torch.full((64,), 0.2), atol=1e-6)
    gray = out[p.gray]
    assert (
        gray.numel()
        and torch.allclose(gray[:, 0], gray[:, 1])
        and torch.allclose(gray[:, 1], gray[:, 2])
    )


def test_default_views_suit_the_image_size():
    digits = default_views((1, 8, 8), False)
    assert digits.crop_scale == (1.0, 1.0) and digits.translate == 1.0 and digits.noise > 0
    rgb = default_views((3, 32, 32), True)
    assert rgb.crop_scale[0] < 1 and rgb.flip and rgb.jitter > 0 and rgb.gray_p > 0
    gray = default_views((1, 28, 28), False)
    assert gray.crop_scale[0] < 1 and not gray.flip and gray.gray_p == 0
