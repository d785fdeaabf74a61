#!/usr/bin/python3
"""vit_stream.py GOLDEN.safetensors OUT [--name NAME] [--cols N] [--grid T,H,W]

Writes the pixel_values of a golden case as a qvl stream (man 5 qvl-stream) for tests/vit.sh:
one record per image (or video) split by its grid, preceded by a small unrelated record that
the programs must pass through.  --cols keeps only the first N columns and --grid overrides
the first record's grid_thw, to make bad input.  Plain Python: no numpy needed."""
import json
import struct
import sys


def read_safetensors(path, want):
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        for name, e in hdr.items():
            if name in want:
                a, b = e["data_offsets"]
                f.seek(base + a)
                out[name] = (e["dtype"], e["shape"], f.read(b - a))
    return out


def record(name, dtype, shape, payload, meta):
    hdr = json.dumps({"name": name, "dtype": dtype, "shape": shape, "meta": meta}).encode()
    hdr += b" " * ((8 - (8 + len(hdr)) % 8) % 8)
    return b"QVL1" + struct.pack("<I", len(hdr)) + hdr + payload


args = sys.argv[1:]
opts = {}
while len(args) > 2:
    k, v = args.pop(2), args.pop(2)
    opts[k] = v
src, dst = args
t = read_safetensors(src, {"pixel_values", "pixel_values_videos", "image_grid_thw",
                           "video_grid_thw"})
video = "pixel_values_videos" in t
_, (nrows, ncols), pv = t["pixel_values_videos" if video else "pixel_values"]
_, (ngrids, _), graw = t["video_grid_thw" if video else "image_grid_thw"]
grids = [struct.unpack_from("<3q", graw, 24 * k) for k in range(ngrids)]
name = opts.get("--name", "pixel_values_videos" if video else "pixel_values")
cols = int(opts.get("--cols", ncols))
out = [record("note", "U8", [3], b"\1\2\3", {"source": "vit.sh"})]
row = 0
for k, g in enumerate(grids):
    n = g[0] * g[1] * g[2]
    grid = list(g)
    if k == 0 and "--grid" in opts:
        grid = [int(x) for x in opts["--grid"].split(",")]
    meta = {"source": "%s#%d" % (src.rsplit("/", 1)[-1], k), "grid_thw": grid,
            "kind": "video" if video else "image"}
    payload = b"".join(pv[(row + r) * ncols * 4:(row + r) * ncols * 4 + cols * 4]
                       for r in range(n))
    out.append(record(name, "F32", [n, cols], payload, meta))
    row += n
with open(dst, "wb") as f:
    f.write(b"".join(out))
