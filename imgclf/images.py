"""Decode one image file into a square RGB uint8 array, or say why it cannot be used."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


class UnusableImage(Exception):
    """The file cannot be used as an image; the message is the reason given in the report."""


def decode_image(data: bytes, size: int, max_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode encoded image bytes into a (size, size, 3) uint8 array and the original (w, h).

    The EXIF orientation is applied, any colour mode becomes RGB (transparency over white),
    and JPEGs are shrunk while they decode, so a huge photo never sits in memory whole.
    """
    if not data:
        raise UnusableImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise UnusableImage(
                    f"{image.width} x {image.height} pixels is over prepare.max_image_pixels"
                    f" ({max_pixels}): a decompression bomb or an image far larger than needed"
                )
            original_size = image.size
            image.draft("RGB", (size, size))
            image = ImageOps.exif_transpose(image)
            image = to_rgb(image)
            image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    except UnusableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnusableImage(f"decompression bomb: {error}") from None
    except Image.UnidentifiedImageError:
        raise UnusableImage("not an image (its content is no format Pillow can read)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UnusableImage(f"corrupt image: {error}") from None
    return np.asarray(image, dtype=np.uint8), original_size


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: 16-bit scaled to 8, transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "I" or pixels.max() > 255 else 255.0
        image = Image.fromarray((pixels * (255.0 / top)).clip(0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.asarray(image).clip(0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash: close for resized or re-encoded copies of the same picture."""
    gray = Image.fromarray(image).convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    pixels = np.asarray(gray, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])
