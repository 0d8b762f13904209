"""prepare on a dirty folder: every file kept and converted right, or rejected with a reason."""

from __future__ import annotations

import contextlib
import csv
import io
import struct
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.config import Params
from imgclf.images import ANALYSIS_SIZE, UnusableImage, decode_image, to_rgb
from imgclf.prepare import Outputs, prepare
from imgclf.samples import Sample, read_manifest
from tests.conftest import ROOT, read_yaml, run
from tests.dirty import (
    BLUE,
    EMPTY_CLASS,
    GREEN,
    KEPT,
    QUIET,
    RED,
    REJECTED,
    WHITE,
    gradient,
    make_dirty_folder,
    picture,
    png_claiming,
    write_data_set,
)

SIZE = 32


@dataclass(frozen=True)
class Prepared:
    outputs: Outputs
    metrics: dict
    printed: list[str]
    kept: dict[str, Sample]
    images: dict[str, np.ndarray]
    rejected: dict[str, str]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    base = tmp_path_factory.mktemp("dirty")
    return prepare_folder(make_dirty_folder(base), base)


def prepare_folder(root: Path, base: Path) -> Prepared:
    """prepare run on the data folder `root`, in this process, writing under `base`."""
    params = Params.model_validate(read_yaml(ROOT / "params.yaml"))
    data = params.data.model_copy(update={"root": str(root), "image_size": SIZE})
    outputs = Outputs(
        base / "prepared/images.npy",
        base / "prepared/thumbnails.npy",
        base / "prepared/manifest.csv",
        base / "prepared/rejected.csv",
    )
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        metrics = prepare(data, params.prepare, outputs)
    kept = {sample.path: sample for sample in read_manifest(outputs.manifest)}
    cache = np.load(outputs.cache)
    with open(outputs.rejected, newline="") as file:
        rejected = {row["path"]: row["reason"] for row in csv.DictReader(file)}
    return Prepared(
        outputs,
        metrics,
        printed.getvalue().splitlines(),
        kept,
        {path: cache[sample.index] for path, sample in kept.items()},
        rejected,
    )


def test_every_file_is_kept_or_rejected_with_its_reason(prepared: Prepared) -> None:
    assert sorted(prepared.kept) == sorted(KEPT)  # a link loop adds no second copy
    assert set(REJECTED) <= set(prepared.rejected) <= set(REJECTED) | QUIET
    for path, words in REJECTED.items():
        assert words in prepared.rejected[path], (path, prepared.rejected[path])


@pytest.mark.parametrize("path", [path for path, colour in KEPT.items() if colour])
def test_a_kept_image_has_the_colour_of_its_file(prepared: Prepared, path: str) -> None:
    image = prepared.images[path].astype(int)
    assert image.shape == (SIZE, SIZE, 3)
    assert np.abs(image - KEPT[path]).max() <= 4, (path, image.mean(axis=(0, 1)))


@pytest.mark.parametrize(
    ("path", "opaque"),
    [
        ("train/cat/rgba_half_transparent.png", BLUE),
        ("train/cat/palette_transparent.png", GREEN),
        ("train/cat/rgb_transparent_colour.png", BLUE),
    ],
)
def test_transparency_is_composited_on_white(prepared: Prepared, path: str, opaque: tuple) -> None:
    image = prepared.images[path].astype(int)
    assert np.abs(image[:, : SIZE // 4] - WHITE).max() <= 2
    assert np.abs(image[:, -SIZE // 4 :] - opaque).max() <= 2


def test_the_exif_orientation_is_applied(prepared: Prepared) -> None:
    path = "train/cat/exif_rotated.jpg"  # stored 64 x 32, left red, right blue
    image = prepared.images[path].astype(int)
    assert np.abs(image[: SIZE // 4] - RED).max() <= 8  # shown turned: red on top
    assert np.abs(image[-SIZE // 4 :] - BLUE).max() <= 8
    sample = prepared.kept[path]
    assert (sample.width, sample.height) == (32, 64)


def test_a_huge_photo_is_kept_with_its_size(prepared: Prepared) -> None:
    sample = prepared.kept["train/cat/huge_4000x3000.jpg"]
    assert (sample.width, sample.height) == (4000, 3000)
    image = prepared.images[sample.path].astype(int)
    assert image[:, -1, 0].mean() - image[:, 0, 0].mean() > 200  # red grows left to right
    assert image[-1, :, 1].mean() - image[0, :, 1].mean() > 200  # green top to bottom


def test_the_counts_and_the_last_line_name_the_rejected_and_the_report(
    prepared: Prepared,
) -> None:
    rejected = len(prepared.rejected)
    assert prepared.metrics == {
        "images": len(KEPT),
        "rejected": rejected,
        "hidden_skipped": 4,  # .DS_Store twice, ._photo.jpg, and the one in the empty folder
        "almost_black": 0,  # sixteen_bit.png, at a quarter of 16 bits, is not
        "classes": 2,
        "train_images": len(KEPT),
    }
    assert f"warning: {EMPTY_CLASS}/ holds no images: not a class" in prepared.printed
    assert any("train/broken/ has no usable image" in line for line in prepared.printed)
    assert prepared.printed[-1] == (
        f"prepare: {len(KEPT)} images kept; files rejected: {rejected}, "
        f"reasons in {prepared.outputs.rejected}"
    )


def test_images_that_decode_almost_black_are_named_in_a_warning(tmp_path: Path) -> None:
    """16-bit files holding 12-bit values (0 to 4095) decode to at most 15 of 255."""
    root = write_data_set(tmp_path / "data", {"train/cat": 3, "train/dog": 3})
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    for name, top in [("twelve_bit", 4095), ("also_twelve_bit", 4000), ("thirteen_bit", 8191)]:
        Image.fromarray((ramp * top).astype(np.uint16)).save(root / f"train/cat/{name}.png")
    result = prepare_folder(root, tmp_path)
    assert result.metrics["almost_black"] == 2
    assert result.images["train/cat/twelve_bit.png"].max() == 15
    (warning,) = [line for line in result.printed if "almost black" in line]
    assert warning.startswith("warning: 2 images almost black (no value above 15 of 255): ")
    assert "train/cat/also_twelve_bit.png" in warning and "train/cat/twelve_bit.png" in warning
    assert "thirteen_bit" not in warning and "picture_" not in warning
    assert "each value times 16" in warning


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_a_huge_jpeg_is_shrunk_while_it_decodes(tmp_path: Path) -> None:
    """Peak memory, measured: the whole 4000 x 3000 image would take 48 MB in Pillow.

    VmHWM, unlike ru_maxrss, starts afresh in the new program, not at pytest's own peak."""
    gradient().save(tmp_path / "huge.jpg", quality=90)
    measure = textwrap.dedent(
        r"""
        import re, sys
        from imgclf.images import ANALYSIS_SIZE, decode_image

        def peak():  # in KiB
            return int(re.search(r"VmHWM:\s*(\d+)", open("/proc/self/status").read())[1])

        data = open(sys.argv[1], "rb").read()
        before = peak()
        decode_image(data, [32, ANALYSIS_SIZE], 10**8)  # as prepare does
        print((peak() - before) * 1024)
        """
    )
    grown = int(run([sys.executable, "-c", measure, str(tmp_path / "huge.jpg")], ROOT).stdout)
    assert grown < 16 * 2**20, f"decoding grew the peak memory by {grown / 2**20:.0f} MiB"


def test_max_image_pixels_alone_rules_above_pillows_own_hard_limit() -> None:
    """Pillow refuses over twice its Image.MAX_IMAGE_PIXELS (179 M pixels), in its own words."""
    header_only = png_claiming(15_000, 12_000)
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(UnusableImage, match="corrupt image"):  # allowed: rejected as truncated
        decode_image(header_only, [8], 200_000_000)
    with pytest.raises(UnusableImage, match=r"over prepare\.max_image_pixels \(150000000\)"):
        decode_image(header_only, [8], 150_000_000)
    assert limit == Image.MAX_IMAGE_PIXELS


def test_the_analysis_image_of_a_jpeg_does_not_depend_on_the_cache_size() -> None:
    """A JPEG shrinks while it decodes by a factor chosen from the size asked for (here 8 for
    16 px, 2 for 128 px, 4 for ANALYSIS_SIZE): the analysis image is decoded for its own size."""
    encoded = io.BytesIO()
    picture(3, size=400).save(encoded, "JPEG", quality=90)
    (_, small), _ = decode_image(encoded.getvalue(), [16, ANALYSIS_SIZE], 10**8)
    (_, large), _ = decode_image(encoded.getvalue(), [128, ANALYSIS_SIZE], 10**8)
    (alone,), _ = decode_image(encoded.getvalue(), [ANALYSIS_SIZE], 10**8)
    assert np.array_equal(small, alone) and np.array_equal(large, alone)
    assert small.shape == (ANALYSIS_SIZE, ANALYSIS_SIZE, 3)


def test_the_thumbnails_are_written_beside_the_cache(prepared: Prepared) -> None:
    thumbnails = np.load(prepared.outputs.thumbnails)
    assert thumbnails.dtype == np.uint8 and thumbnails.shape == (len(KEPT), 16, 16)
    grey = thumbnails[prepared.kept["train/cat/grayscale.png"].index]
    assert (grey == 100).all()


def test_max_image_pixels_rejects_a_real_image_and_names_the_parameter() -> None:
    encoded = io.BytesIO()
    Image.new("RGB", (200, 100)).save(encoded, "PNG")
    decode_image(encoded.getvalue(), [8], 20_000)
    with pytest.raises(UnusableImage, match=r"200 x 100 pixels is over prepare\.max_image_pixels"):
        decode_image(encoded.getvalue(), [8], 19_999)


def test_max_image_pixels_rules_below_pillows_own_hard_limit() -> None:
    header_only = png_claiming(10_000, 9_500)  # 95 M pixels: over Pillow's warning level
    with pytest.raises(UnusableImage) as raised:
        decode_image(header_only, [8], 100_000_000)
    assert "bomb" not in str(raised.value)  # allowed by the parameter: rejected as truncated
    with pytest.raises(UnusableImage, match=r"over prepare\.max_image_pixels"):
        decode_image(header_only, [8], 50_000_000)


@pytest.mark.parametrize(("value", "grey"), [(0.5, 128), (1.0, 255), (200.0, 200)])
def test_a_float_image_is_read_in_its_own_range(value: float, grey: int) -> None:
    # Scientific and HDR tools save floats from 0 to 1; others keep 0 to 255.
    picture = Image.fromarray(np.full((8, 8), value, np.float32))
    assert picture.mode == "F"
    assert np.abs(np.asarray(to_rgb(picture), dtype=int) - grey).max() <= 1


def jpeg_with_corrupt_exif() -> bytes:
    """Pillow warns of a damaged part it skips, here EXIF whose first directory claims five
    entries and holds one, without saying which file; the image itself is kept."""
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<LH", 8, 5) + struct.pack("<HHLL", 0x0112, 3, 1, 6)
    encoded = io.BytesIO()
    Image.new("RGB", (16, 16), RED).save(encoded, "JPEG", exif=exif, quality=95)
    return encoded.getvalue()


def test_a_warning_while_decoding_names_the_file() -> None:
    with pytest.warns(UserWarning) as caught:
        (image,), size = decode_image(
            jpeg_with_corrupt_exif(), [8], 10**8, name="train/cat/broken.jpg"
        )
    assert [(warning.filename, str(warning.message)) for warning in caught] == [
        ("train/cat/broken.jpg", "Corrupt EXIF data.  Expecting to read 12 bytes but only got 0. ")
    ]
    assert size == (16, 16) and np.abs(image.astype(int) - RED).max() <= 8


def test_prepare_names_the_file_a_decoding_warning_is_about(tmp_path: Path, workdir) -> None:
    """As a user runs it: the warning comes from a decoding process, on its stderr."""
    root = write_data_set(tmp_path / "data", {"train/cat": 3, "train/dog": 3})
    (root / "train/cat/broken.jpg").write_bytes(jpeg_with_corrupt_exif())
    project = workdir(data__root=str(root))
    result = run([sys.executable, "-m", "stages.prepare"], project, env={"PYTHONPATH": str(ROOT)})
    assert "train/cat/broken.jpg:0: UserWarning: Corrupt EXIF data." in result.stderr
