"""Sample thumbnails as inline PNG ``data:`` URIs (stdlib ``zlib`` only, deterministic).

Images are small (8x8 digits, 28x28 MNIST, 32x32 CIFAR), so they are encoded at their
native size and enlarged by the browser with nearest-neighbour scaling
(``image-rendering: pixelated`` in the report's CSS).
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC-32 of type and payload."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def to_pixels(image: np.ndarray) -> np.ndarray:
    """Turns a ``(c, h, w)`` float image in ``[0, 1]`` into ``uint8`` pixels.

    Args:
        image: One channel (greyscale) or three (RGB), channels first.

    Returns:
        ``(h, w)`` for greyscale or ``(h, w, 3)`` for RGB, values ``0..255``.

    Raises:
        ValueError: If the image is not ``(1|3, h, w)``.
    """
    array = np.asarray(image, dtype=float)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, h, w) image, got shape {array.shape}")
    scaled = np.rint(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0).astype(np.uint8)
    return scaled[0] if scaled.shape[0] == 1 else np.transpose(scaled, (1, 2, 0))


def encode_png(pixels: np.ndarray) -> bytes:
    """Encodes ``uint8`` pixels as an 8-bit PNG (greyscale ``(h, w)`` or RGB ``(h, w, 3)``).

    Every scanline uses filter type 0 (none); the output depends only on the pixels.

    Args:
        pixels: The image.

    Returns:
        The PNG file's bytes.
    """
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = array.shape[:2]
    colour_type = 0 if array.ndim == 2 else 2
    rows = array.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(image: np.ndarray) -> str:
    """A ``(c, h, w)`` float image as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(encode_png(to_pixels(image))).decode()
