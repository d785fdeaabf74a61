#!/usr/bin/python3
"""Fixtures for tests/test_image.c and tests/test_resize.c, made with Debian's python3-pil
(Pillow 9.4), the reference's decoder and resampler.

    /usr/bin/python3 tests/data/resize/gen.py      # rewrites tests/data/resize/

Sources: PNGs of every colour type and bit depth (written by hand here, so that Pillow's
encoder does not limit which kinds exist), interlaced, with tRNS and pHYs; JPEGs through
Pillow (baseline, progressive, gray, CMYK, subsampling modes, JFIF and EXIF densities).
Expected values: what the reference feeds the model: Image.open + qwen-vl-utils' to_rgb
(decode_*.png), and Image.resize((w, h), BICUBIC) of that RGB image (resize_*.png).
manifest.txt lists them:
    decode SRC EXPECTED.png DPI_X DPI_Y
    resize SRC W H EXPECTED.png
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240501)


def to_rgb(im):
    # qwen-vl-utils 0.0.10 to_rgb
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, bits):
    """samples: 1-D array of ints (all channels interleaved) -> packed bytes."""
    if bits == 16:
        return samples.astype(">u2").tobytes()
    if bits == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // bits
    n = (len(samples) + per - 1) // per * per
    s = np.zeros(n, dtype=np.uint32)
    s[: len(samples)] = samples
    s = s.reshape(-1, per)
    out = np.zeros(len(s), dtype=np.uint32)
    for i in range(per):
        out |= s[:, i] << (8 - bits * (i + 1))
    return out.astype(np.uint8).tobytes()


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, arr, ctype, bits, plte=None, trns=None, phys=None, interlace=False):
    """arr: [h, w, channels] ints in the sample range."""
    h, w = arr.shape[:2]
    arr = arr.reshape(h, w, -1)
    raw = b""
    if not interlace:
        for y in range(h):
            raw += b"\0" + pack_row(arr[y].reshape(-1), bits)
    else:
        for x0, y0, dx, dy in ADAM7:
            sub = arr[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for row in sub:
                raw += b"\0" + pack_row(row.reshape(-1), bits)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 1 if interlace else 0))
    if phys:
        data += chunk(b"pHYs", struct.pack(">IIB", phys[0], phys[1], 1))
    if plte is not None:
        data += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def smooth(h, w, c, hi):
    """A smooth gradient with some noise: resampling artefacts show, and it compresses."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w, c), dtype=np.int64)
    for i in range(c):
        v = (np.sin(x / (3.0 + i) + i) + np.cos(y / (4.0 + 2 * i))) * 0.25 + 0.5
        v = v + rng.normal(0, 0.05, size=v.shape)
        out[..., i] = np.clip(np.round(v * hi), 0, hi)
    return out


manifest = []


def strip_app14(data):
    """A JPEG without its APP14 (Adobe) segments; the scan and what follows unchanged."""
    out, i = bytearray(data[:2]), 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xDA:
            out += data[i:]
            break
        n = (data[i + 2] << 8) | data[i + 3]
        if marker != 0xEE:
            out += data[i:i + 2 + n]
        i += 2 + n
    return bytes(out)


def add_decode(src, dpi=(0, 0)):
    im = Image.open(os.path.join(HERE, src))
    rgb = to_rgb(im)
    name = "decode_" + os.path.splitext(src)[0] + ".png"
    rgb.save(os.path.join(HERE, name))
    d = im.info.get("dpi", dpi)
    manifest.append("decode %s %s %.4f %.4f" % (src, name, float(d[0]), float(d[1])))
    return rgb


def main():
    for f in os.listdir(HERE):
        if f.endswith((".png", ".jpg", ".txt")):
            os.remove(os.path.join(HERE, f))
    H, W = 23, 37
    # PNG: every colour type and bit depth
    for bits in (1, 2, 4, 8, 16):
        write_png(os.path.join(HERE, "g%d.png" % bits), smooth(H, W, 1, (1 << bits) - 1), 0, bits)
        add_decode("g%d.png" % bits)
    g16 = smooth(H, W, 1, 400)  # 16-bit gray with values around 255: Pillow clips
    write_png(os.path.join(HERE, "g16low.png"), g16, 0, 16)
    add_decode("g16low.png")
    write_png(os.path.join(HERE, "g8trns.png"), smooth(H, W, 1, 255), 0, 8, trns=struct.pack(">H", 128))
    add_decode("g8trns.png")
    for bits in (8, 16):
        write_png(os.path.join(HERE, "rgb%d.png" % bits), smooth(H, W, 3, (1 << bits) - 1), 2, bits)
        add_decode("rgb%d.png" % bits)
        write_png(os.path.join(HERE, "ga%d.png" % bits), smooth(H, W, 2, (1 << bits) - 1), 4, bits)
        add_decode("ga%d.png" % bits)
        write_png(os.path.join(HERE, "rgba%d.png" % bits), smooth(H, W, 4, (1 << bits) - 1), 6, bits)
        add_decode("rgba%d.png" % bits)
    write_png(os.path.join(HERE, "rgb8trns.png"), smooth(H, W, 3, 255), 2, 8, trns=struct.pack(">HHH", 10, 20, 30))
    add_decode("rgb8trns.png")
    for bits in (1, 2, 4, 8):
        n = 1 << bits
        pal = rng.integers(0, 256, size=(n, 3))
        idx = smooth(H, W, 1, n - 1)
        write_png(os.path.join(HERE, "p%d.png" % bits), idx, 3, bits, plte=pal)
        add_decode("p%d.png" % bits)
        trns = bytes(rng.integers(0, 256, size=n // 2 + 1).astype(np.uint8))
        write_png(os.path.join(HERE, "p%dtrns.png" % bits), idx, 3, bits, plte=pal, trns=trns)
        add_decode("p%dtrns.png" % bits)
    write_png(os.path.join(HERE, "rgb8i.png"), smooth(H, W, 3, 255), 2, 8, interlace=True)
    add_decode("rgb8i.png")
    write_png(os.path.join(HERE, "rgba16i.png"), smooth(H, W, 4, 65535), 6, 16, interlace=True)
    add_decode("rgba16i.png")
    write_png(os.path.join(HERE, "p2i.png"), smooth(H, W, 1, 3), 3, 2, plte=rng.integers(0, 256, size=(4, 3)), interlace=True)
    add_decode("p2i.png")
    write_png(os.path.join(HERE, "dpi300.png"), smooth(H, W, 3, 255), 2, 8, phys=(11811, 11811))
    add_decode("dpi300.png")

    # JPEG through Pillow's encoder (libjpeg-turbo)
    base = Image.fromarray(smooth(61, 97, 3, 255).astype(np.uint8), "RGB")
    base.save(os.path.join(HERE, "j444.jpg"), quality=90, subsampling=0)
    add_decode("j444.jpg")
    base.save(os.path.join(HERE, "j420.jpg"), quality=85, subsampling=2, dpi=(300, 300))
    add_decode("j420.jpg")
    base.save(os.path.join(HERE, "j422.jpg"), quality=75, subsampling=1, dpi=(200, 100))
    add_decode("j422.jpg")
    base.save(os.path.join(HERE, "jprog.jpg"), quality=80, progressive=True)
    add_decode("jprog.jpg")
    base.convert("L").save(os.path.join(HERE, "jgray.jpg"), quality=90)
    add_decode("jgray.jpg")
    base.convert("CMYK").save(os.path.join(HERE, "jcmyk.jpg"), quality=90)
    add_decode("jcmyk.jpg")
    # The same without its Adobe (APP14) segment: Pillow inverts CMYK all the same.
    with open(os.path.join(HERE, "jcmyk.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(HERE, "jcmyk_noadobe.jpg"), "wb") as f:
        f.write(strip_app14(data))
    add_decode("jcmyk_noadobe.jpg")
    exif = Image.Exif()
    exif[0x011A] = 150.0
    exif[0x011B] = 150.0
    exif[0x0128] = 2
    exif[0x0112] = 6  # orientation: the reference ignores it
    b = io.BytesIO()
    base.save(b, "JPEG", quality=90, exif=exif.tobytes())
    data = b.getvalue()
    # drop the JFIF APP0 so that the density comes from EXIF
    assert data[2:4] == b"\xff\xe0"
    seg = struct.unpack(">H", data[4:6])[0]
    with open(os.path.join(HERE, "jexif.jpg"), "wb") as f:
        f.write(data[:2] + data[4 + seg:])
    add_decode("jexif.jpg")

    # Resampling: Pillow BICUBIC on RGB, many scale factors
    src = add_decode("j444.jpg")  # 97x61
    sizes = [(23, 15), (97, 15), (23, 61), (194, 122), (250, 170), (56, 28), (28, 56), (1, 61), (97, 1),
             (1, 1), (96, 60), (98, 62), (33, 29), (131, 47), (20, 200), (300, 7)]
    for w, h in sizes:
        name = "resize_j444_%dx%d.png" % (w, h)
        src.resize((w, h), Image.BICUBIC).save(os.path.join(HERE, name))
        manifest.append("resize j444.jpg %d %d %s" % (w, h, name))
    big = Image.fromarray(smooth(250, 330, 3, 255).astype(np.uint8), "RGB")
    big.save(os.path.join(HERE, "big.png"))
    for w, h in [(79, 60), (80, 59), (56, 84), (330, 17), (3, 250), (161, 111), (331, 251), (24, 24)]:
        name = "resize_big_%dx%d.png" % (w, h)
        big.resize((w, h), Image.BICUBIC).save(os.path.join(HERE, name))
        manifest.append("resize big.png %d %d %s" % (w, h, name))
    strip = Image.fromarray(smooth(1, 120, 3, 255).astype(np.uint8), "RGB")
    strip.save(os.path.join(HERE, "strip.png"))
    for w, h in [(28, 28), (560, 1), (7, 3)]:
        name = "resize_strip_%dx%d.png" % (w, h)
        strip.resize((w, h), Image.BICUBIC).save(os.path.join(HERE, name))
        manifest.append("resize strip.png %d %d %s" % (w, h, name))
    with open(os.path.join(HERE, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


main()
