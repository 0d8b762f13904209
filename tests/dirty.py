"""Data folders for the tests, made for real with Pillow: a dirty one and small clean ones.

`make_dirty_folder` holds every kind of file a user's real photo folder brings. It writes
exactly the files named below: KEPT (with the colour the kept image must have), REJECTED (with
words the reason must contain) and QUIET (hidden files and non-images: left out quietly or
rejected, either is fine), plus an empty class folder, a class folder reached through a
symbolic link and a link that loops back.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
RED: Colour = (220, 30, 30)
GREEN: Colour = (0, 160, 0)
BLUE: Colour = (20, 40, 230)

# path relative to data.root -> the uniform colour of the kept image (None: a test of its own)
KEPT: dict[str, Colour | None] = {
    "train/cat/grayscale.png": (100, 100, 100),
    "train/cat/rgba_half_transparent.png": None,  # left transparent red, right opaque blue
    "train/cat/gray_alpha.png": WHITE,  # fully transparent black
    "train/cat/palette_transparent.png": None,  # left transparent index, right green
    "train/cat/rgb_transparent_colour.png": None,  # left the tRNS colour, right blue
    "train/cat/cmyk.jpg": (255, 0, 0),  # C=0 M=255 Y=255 K=0
    "train/cat/sixteen_bit.png": (64, 64, 64),  # 16384 of 65535
    "train/cat/exif_rotated.jpg": None,  # stored: left red, right blue; orientation 6
    "train/cat/upper.JPG": (200, 120, 40),
    "train/cat/long.jpeg": (40, 120, 200),
    "train/cat/bitmap.bmp": (90, 30, 150),
    "train/cat/web.webp": (30, 150, 90),
    "train/cat/one_pixel.png": (10, 200, 30),
    "train/cat/huge_4000x3000.jpg": None,  # a smooth gradient
    "train/cat/linked.png": (150, 150, 20),  # a symbolic link to a file outside data.root
    "train/dog/first.png": (60, 60, 160),  # train/dog is a link to a folder outside data.root
    "train/dog/second.png": (160, 60, 60),
}

# path -> words its reason must contain
REJECTED: dict[str, str] = {
    "train/cat/truncated.jpg": "truncated",
    "train/cat/zero_bytes.jpg": "empty file",
    "train/cat/text.jpg": "not an image",
    "train/cat/random_bytes.png": "not an image",
    "train/cat/bomb.png": "decompression bomb",
    "train/dog/gone.png": "unreadable",  # a link whose target is missing
    "train/broken/only.png": "not an image",  # so train/broken is no class
}

QUIET = {"train/.DS_Store", "train/cat/.DS_Store", "train/cat/._photo.jpg", "train/cat/readme.txt"}

EMPTY_CLASS = "train/empty"
LOOP = "train/cat/loop"  # a link back to train/cat: walked once, not forty times
BOMB_SIDE = 30_000  # the bomb's header claims 30000 x 30000 pixels


def make_dirty_folder(base: Path) -> Path:
    """Write the dirty folder under `base`; return its data.root."""
    root, outside = base.resolve() / "dirty", base.resolve() / "outside"
    cat, dogs = root / "train" / "cat", outside / "dogs"
    for folder in (cat, dogs, root / EMPTY_CLASS, root / "train" / "broken"):
        folder.mkdir(parents=True)

    uniform(KEPT["train/cat/grayscale.png"], "L").save(cat / "grayscale.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (*RED, 0)
    rgba[:, 8:] = (*BLUE, 255)
    Image.fromarray(rgba, "RGBA").save(cat / "rgba_half_transparent.png")
    Image.new("LA", (16, 16), (0, 0)).save(cat / "gray_alpha.png")
    palette = Image.fromarray(np.repeat([[0] * 8 + [1] * 8], 16, axis=0).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, *GREEN])  # index 0 is black: seen as black if alpha is lost
    palette.save(cat / "palette_transparent.png", transparency=0)
    keyed = np.zeros((16, 16, 3), np.uint8)
    keyed[:, :8], keyed[:, 8:] = (1, 2, 3), BLUE
    Image.fromarray(keyed).save(cat / "rgb_transparent_colour.png", transparency=(1, 2, 3))
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(cat / "cmyk.jpg", quality=95)
    Image.fromarray(np.full((16, 16), 16384, np.uint16)).save(cat / "sixteen_bit.png")
    stored = np.zeros((32, 64, 3), np.uint8)  # wider than high: the rotation shows
    stored[:, :32], stored[:, 32:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: display rotated 90 degrees clockwise
    Image.fromarray(stored).save(cat / "exif_rotated.jpg", exif=exif, quality=95)
    for name in ("upper.JPG", "long.jpeg", "bitmap.bmp", "web.webp"):
        uniform(KEPT[f"train/cat/{name}"]).save(cat / name, quality=95)
    uniform(KEPT["train/cat/one_pixel.png"], size=1).save(cat / "one_pixel.png")
    gradient().save(cat / "huge_4000x3000.jpg", quality=90)
    uniform(KEPT["train/cat/linked.png"]).save(outside / "linked_target.png")
    (cat / "linked.png").symlink_to(outside / "linked_target.png")
    uniform(KEPT["train/dog/first.png"]).save(dogs / "first.png")
    uniform(KEPT["train/dog/second.png"]).save(dogs / "second.png")
    (dogs / "gone.png").symlink_to(outside / "deleted.png")
    (root / "train" / "dog").symlink_to(dogs, target_is_directory=True)

    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(cat / "truncated.jpg", quality=95)
    whole = (cat / "truncated.jpg").read_bytes()
    (cat / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (cat / "zero_bytes.jpg").write_bytes(b"")
    (cat / "text.jpg").write_text("not a picture: notes about the cat photos\n")
    (cat / "random_bytes.png").write_bytes(np.random.default_rng(1).bytes(2000))
    (cat / "bomb.png").write_bytes(png_claiming(BOMB_SIDE, BOMB_SIDE))
    (root / "train" / "broken" / "only.png").write_bytes(b"\x89PNG but nothing after")
    (root / LOOP).symlink_to(cat, target_is_directory=True)

    for path in QUIET:
        (root / path).write_bytes(b"\x00\x05\x16\x07 resource fork or notes")
    (root / EMPTY_CLASS / ".DS_Store").write_bytes(b"\x00")  # hidden files do not make a class
    return root


def uniform(colour: Colour | None, mode: str = "RGB", size: int = 16) -> Image.Image:
    assert colour is not None
    return Image.new("RGB", (size, size), colour).convert(mode)


def gradient(width: int = 4000, height: int = 3000) -> Image.Image:
    """Smooth, so the JPEG is small on disk however many pixels it has."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    channels = [np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width))]
    channels.append(np.full((height, width), 128, np.float32))
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def png_claiming(width: int, height: int) -> bytes:
    """A 1 x 1 PNG whose header says it is `width` x `height`: a decompression bomb's header."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def picture(seed: int, size: int = 96) -> Image.Image:
    """A smooth random picture: unlike noise, it survives resizing and JPEG like a photo."""
    colours = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), np.uint8)
    return Image.fromarray(colours).resize((size, size), Image.Resampling.BICUBIC)


def write_data_set(root: Path, counts: dict[str, int], first_seed: int = 0) -> Path:
    """`counts[folder]` different pictures in each folder (e.g. "train/cat": 5); returns root."""
    seed = first_seed
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            picture(seed).save(root / folder / f"picture_{seed}.png")
            seed += 1
    return root
