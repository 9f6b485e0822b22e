"""normalize(): one size, one format, sRGB, no metadata, deterministic bytes."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from turingtest.images import ImageError, encode_png, normalize, open_image, png_length


def _noise(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> PILImage.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return PILImage.fromarray(arr, mode)


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        names.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return names


def _save(im: PILImage.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_every_output_is_a_square_png_of_the_configured_size_with_only_pixel_chunks(settings):
    settings.IMAGE_SIZE = 64
    for im in [_noise((100, 60)), _noise((30, 90), mode="RGBA"), PILImage.new("L", (50, 50), 128)]:
        out = normalize(im)
        assert out.image.size == (64, 64)
        assert out.image.mode == "RGB"
        assert set(_png_chunks(out.data)) == {b"IHDR", b"IDAT", b"IEND"}
        assert out.sha256 == hashlib.sha256(out.data).hexdigest()


def test_the_same_pixels_always_give_the_same_bytes_whatever_the_container_said():
    im = _noise((80, 80), seed=3)
    plain = normalize(_save(im, "PNG"), size=48)
    exif = PILImage.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x0131] = "Software 1.0"
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "synthetic? real?")
    info.add_text("XML:com.adobe.xmp", "<x:xmpmeta/>")
    tagged = normalize(_save(im, "PNG", exif=exif, pnginfo=info, dpi=(300, 300)), size=48)
    assert tagged.data == plain.data
    assert normalize(im, size=48).data == plain.data


def test_metadata_is_stripped_from_jpeg_input_including_exif_and_icc():
    im = _noise((64, 64), seed=5)
    exif = PILImage.Exif()
    exif[0x010F] = "CameraMaker"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = normalize(_save(im, "JPEG", exif=exif, icc_profile=srgb, quality=95), size=32)
    assert b"CameraMaker" not in out.data
    assert b"iCCP" not in out.data and b"eXIf" not in out.data
    reopened = PILImage.open(io.BytesIO(out.data))
    assert "icc_profile" not in reopened.info and "exif" not in reopened.info


def test_exif_orientation_is_applied_to_the_pixels_before_it_is_dropped():
    arr = np.zeros((40, 80, 3), dtype=np.uint8)
    arr[:, :40] = (255, 0, 0)  # left half red, right half blue
    arr[:, 40:] = (0, 0, 255)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = _save(PILImage.fromarray(arr), "PNG", exif=exif)
    out = normalize(data, size=40).pixels
    # Displayed upright, the photo is 40 wide × 80 tall, red on top, blue below;
    # the centre crop keeps rows 20..60: red top half, blue bottom half.
    assert out[2, 20, 0] > 200 and out[2, 20, 2] < 50
    assert out[-3, 20, 2] > 200 and out[-3, 20, 0] < 50


def test_non_square_images_are_centre_cropped_not_padded():
    arr = np.zeros((50, 150, 3), dtype=np.uint8)
    arr[:, 50:100] = (200, 160, 140)  # the centred square is skin-coloured, the sides black
    out = normalize(PILImage.fromarray(arr), size=50).pixels
    assert np.abs(out.astype(int) - (200, 160, 140)).max() <= 2  # no black bars survive


def _swapped_primaries_icc() -> bytes:
    """A minimal ICC v2 RGB matrix/TRC profile whose red and blue primaries are swapped.

    Built byte by byte (Pillow cannot build RGB profiles with custom primaries): a pure
    red pixel tagged with it *means* sRGB blue, so a conversion is unmistakable.
    """

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.1431, 0.0606, 0.7141)),  # sRGB's blue primary (D50)
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.4361, 0.2225, 0.0139)),  # sRGB's red primary
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0" * 4
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def test_an_embedded_icc_profile_is_converted_to_srgb():
    im = PILImage.new("RGB", (16, 16), (255, 0, 0))
    tagged = normalize(_save(im, "PNG", icc_profile=_swapped_primaries_icc()), size=16)
    r, g, b = tagged.pixels[0, 0].tolist()
    assert b > 200 and r < 60  # "red" in the swapped profile is blue in sRGB
    assert normalize(_save(im, "PNG"), size=16).pixels[0, 0].tolist() == [255, 0, 0]  # untagged = sRGB
    assert b"iCCP" not in tagged.data


def test_sixteen_bit_greyscale_and_transparency_become_eight_bit_rgb():
    grey16 = PILImage.fromarray(np.full((20, 20), 65535 // 2, dtype=np.uint16))
    assert grey16.mode.startswith("I;16")
    out = normalize(grey16, size=20).pixels
    assert out.dtype == np.uint8 and abs(int(out[0, 0, 0]) - 127) <= 1
    clear = PILImage.new("RGBA", (20, 20), (10, 20, 30, 0))
    assert normalize(clear, size=20).pixels[0, 0].tolist() == [255, 255, 255]  # over white
    palette = PILImage.new("P", (20, 20), 3)
    assert normalize(palette, size=20).image.mode == "RGB"


def test_a_mask_follows_the_same_crop_and_gives_lesion_geometry():
    im = _noise((120, 60))
    mask = np.zeros((60, 120), dtype=bool)
    mask[15:45, 45:75] = True  # a 30×30 square in the middle of the centred 60×60 crop
    out = normalize(im, size=30, mask=mask)
    assert out.mask is not None and out.mask.shape == (30, 30)
    assert out.lesion_area_fraction() == pytest.approx(0.25, abs=0.02)
    assert out.lesion_bbox() == pytest.approx([0.25, 0.25, 0.75, 0.75], abs=0.04)
    assert set(_png_chunks(out.mask_data)) == {b"IHDR", b"IDAT", b"IEND"}


def test_a_mask_of_another_size_is_refused_with_both_sizes_named():
    with pytest.raises(ImageError, match="mask size mismatch: mask is 10×10, image is 20×20"):
        normalize(_noise((20, 20)), size=16, mask=np.ones((10, 10), bool))


def test_unreadable_inputs_get_a_reason_a_person_understands(tmp_path):
    with pytest.raises(ImageError, match="not an image"):
        open_image(b"this is a CSV, not a picture")
    with pytest.raises(ImageError, match="missing file"):
        open_image(tmp_path / "nope.png")
    whole = _save(_noise((200, 200)), "JPEG", quality=90)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        open_image(whole[: len(whole) // 2])


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(settings):
    settings.IMAGE_MAX_PIXELS = 10_000
    # A valid PNG header claiming 20000 × 20000 pixels, with a tiny IDAT.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda name, body: (  # noqa: E731
        struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))
    )
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    with pytest.raises(ImageError, match="decompression bomb"):
        open_image(bomb)


def test_encode_png_ignores_whatever_info_the_pil_image_carries():
    im = _noise((8, 8))
    im.info["icc_profile"] = b"junk"
    im.info["exif"] = b"junk"
    assert set(_png_chunks(encode_png(im))) == {b"IHDR", b"IDAT", b"IEND"}


def test_every_image_of_one_size_has_the_same_byte_length_whatever_its_content():
    flat = PILImage.new("RGB", (97, 97), (180, 140, 120))
    gradient = PILImage.fromarray(np.tile(np.arange(97, dtype=np.uint8)[:, None, None], (1, 97, 3)))
    photo_like = _noise((400, 300), seed=3)  # incompressible; also cropped and resized
    outputs = [normalize(im, size=97) for im in (flat, gradient, photo_like, _noise((97, 97), seed=4))]
    assert {len(out.data) for out in outputs} == {png_length(97)}
    assert len({out.sha256 for out in outputs}) == 4
    # one IDAT of stored deflate: the chunk layout is the same too
    assert {tuple(_png_chunks(out.data)) for out in outputs} == {(b"IHDR", b"IDAT", b"IEND")}


def test_the_uncompressed_png_decodes_to_exactly_the_pixels_at_every_size():
    for side in (1, 8, 148, 256, 300):  # 256 and 300 need several stored deflate blocks
        arr = np.asarray(_noise((side, side + 1), seed=side))
        data = encode_png(PILImage.fromarray(arr))
        assert len(data) == png_length(side, side + 1)
        assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB")), arr)
        assert zlib.decompress(data[8 + 25 + 8 : -16])[: 1 + 3 * side] == b"\x00" + arr[0].tobytes()
    assert png_length(256) == 196_947  # the figure the docstring and README quote


def test_normalize_records_the_native_size_before_crop_and_resize():
    out = normalize(_noise((120, 90)), size=32)
    assert out.native_size == (120, 90) and out.image.size == (32, 32)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90°: the native size is the displayed (oriented) one
    rotated = normalize(_save(_noise((120, 90)), "JPEG", exif=exif), size=32)
    assert rotated.native_size == (90, 120)
