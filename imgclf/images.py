"""Decode one image file into a square RGB uint8 array, or say why it cannot be used."""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps

from imgclf.wording import counted, listed

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

# What Pillow's decoders raise on malformed files (Image.open catches the same while it
# identifies a file); any of them means this file is unusable, not that the run must stop.
DECODER_ERRORS = (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError, struct.error)

# Near duplicates are judged on each image decoded at this fixed size, never at
# data.image_size, so a training parameter cannot change which files are copies.
ANALYSIS_SIZE = 64
THUMBNAIL = 16  # side of the grey thumbnail that confirms a near duplicate
# The brightest value, of 255, in a 16-bit image whose values use only 12 bits (0 to 4095):
# a decoded image with no value above it is almost black, and likely such a file.
ALMOST_BLACK = 15


class UnusableImage(Exception):
    """The file cannot be used as an image; the message is the reason given in the report."""


def decode_image(
    data: bytes,
    sizes: Sequence[int],
    max_pixels: int,
    max_pixels_setting: str = "prepare.max_image_pixels",
    name: str = "",
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Decode encoded image bytes into one (size, size, 3) uint8 array for each of `sizes`,
    and the original (w, h), as the picture is shown. A larger image than `max_pixels` is
    refused, naming `max_pixels_setting`, the setting that gave it.

    The EXIF orientation is applied, any colour mode becomes RGB (transparency over white),
    and JPEGs are shrunk while they decode, so a huge photo never sits in memory whole. How
    much a JPEG shrinks depends on the size asked for, so each size is decoded on its own
    (once for sizes that shrink it alike): an image never depends on the other sizes asked.
    A warning given while decoding is given again naming `name`, the file's path.
    """
    if not data:
        raise UnusableImage("empty file (0 bytes)")
    try:
        with pillow_size_limit_lifted(), warnings_naming(name):
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise UnusableImage(
                    f"{image.width} x {image.height} pixels is over {max_pixels_setting}"
                    f" ({max_pixels}): a decompression bomb or an image far larger than needed"
                )
            original = image.size
            turned = False
            decoded: dict[tuple[int, int], Image.Image] = {}  # by the size drafted to
            images = []
            for size in sizes:
                image = Image.open(io.BytesIO(data))
                image.draft("RGB", (size, size))
                if image.size not in decoded:
                    oriented = ImageOps.exif_transpose(image)
                    turned = oriented.size != image.size  # by 90 degrees: report it as shown
                    decoded[image.size] = to_rgb(oriented)
                resized = decoded[image.size].resize(
                    (size, size), Image.Resampling.BILINEAR, reducing_gap=3.0
                )
                images.append(np.asarray(resized, dtype=np.uint8))
    except Image.UnidentifiedImageError:
        raise UnusableImage("not an image (its content is no format Pillow can read)") from None
    except DECODER_ERRORS as error:
        raise UnusableImage(f"corrupt image: {error or type(error).__name__}") from None
    return images, (original[::-1] if turned else original)


@contextlib.contextmanager
def pillow_size_limit_lifted() -> Iterator[None]:
    """The size check in decode_image, against prepare.max_image_pixels, is the one that
    counts: Pillow's own (a warning over Image.MAX_IMAGE_PIXELS, an error over twice it)
    would refuse an image the parameter allows, in words that do not name it."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


@contextlib.contextmanager
def warnings_naming(name: str) -> Iterator[None]:
    """Pillow warns of a part of a file it skips ('Corrupt EXIF data') without naming the file,
    and only the first time a message comes: give each once for each file, as from the file
    (`name:0: UserWarning: Corrupt EXIF data...`), where Python would name a line of Pillow."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        for category, message in dict.fromkeys((w.category, str(w.message)) for w in caught):
            if name:
                warnings.warn_explicit(message, category, name, 0)
            else:
                warnings.warn(message, category, stacklevel=1)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: 16-bit scaled to 8, floats from their range (0 to 1, or
    to 255), transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = full_scale(image.mode, pixels.max())
        image = Image.fromarray((pixels * (255.0 / top)).clip(0, 255).astype(np.uint8))
    if image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")  # a transparent palette index or colour (PNG tRNS)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def full_scale(mode: str, largest: float) -> float:
    """The value white has in a single-channel image of this Pillow mode: 65535 in 16 bits;
    a 32-bit integer image holds 16- or 8-bit values; floats run to 1 (as most tools write
    them) or to 255."""
    if mode == "F":
        return 1.0 if largest <= 1.0 else 255.0
    if mode == "I":
        return 65535.0 if largest > 255 else 255.0
    return 65535.0


def is_almost_black(image: np.ndarray) -> bool:
    return bool(image.max() <= ALMOST_BLACK)


def almost_black_warning(paths: list[str]) -> str:
    """Why images that decode almost black are worth a look, and what to do: 16 bits become 8
    as if every bit were used (Pillow ignores a PNG's sBIT chunk, which says how many are), so
    12-bit values decode 16 times too dark."""
    return (
        f"{counted(len(paths), 'image')} almost black (no value above {ALMOST_BLACK} of"
        f" 255): {listed(paths)}. A 16-bit image whose values use only 12 bits (0 to 4095)"
        " decodes so, and a network learns little from it: scale such files to the full 16"
        " bits (each value times 16) or save them in 8 bits"
    )


def fingerprint(analysis: np.ndarray) -> tuple[int, np.ndarray]:
    """The 64-bit difference hash and the grey THUMBNAIL x THUMBNAIL thumbnail (uint8) of an
    image decoded at ANALYSIS_SIZE: close for resized, re-cropped or re-encoded copies of one
    picture, and the same whatever size the cache is made at."""
    grey = Image.fromarray(analysis).convert("L")
    pixels = np.asarray(grey.resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    thumbnail = grey.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    return int(np.packbits(bits).view(">u8")[0]), np.asarray(thumbnail, dtype=np.uint8)
