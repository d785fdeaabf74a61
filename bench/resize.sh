#!/usr/bin/env bash
# bench/resize.sh: qvl-resize on a 2480x3508 300-DPI page (--dpi 300:72) and a 4000x3000 JPEG
# photo (default limits), in ms, next to Pillow's resize of the same image to the same size
# (BICUBIC, measured in the same run when Debian's python3-pil is installed).
#   bench/resize.sh            (run from the repository root after make)
set -eu
cd "$(dirname "$0")/.."
make -s bin/qvl-resize build/bench/resize >/dev/null || [[ -x bin/qvl-resize && -x build/bench/resize ]]
T=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
REP=${REP:-5}
PY=/usr/bin/python3
havepil=0
$PY -c 'import PIL, numpy' 2>/dev/null && havepil=1
[[ $havepil = 1 ]] || { echo "python3-pil missing: cannot make the inputs"; exit 1; }
$PY - "$T" <<'PYEOF'
import sys, numpy as np
from PIL import Image, ImageDraw
t = sys.argv[1]
rng = np.random.default_rng(1)
# a text page: black strokes on white, 300 dpi
page = Image.new("RGB", (2480, 3508), "white")
d = ImageDraw.Draw(page)
for y in range(200, 3300, 60):
    for x in range(200, 2280, 40):
        if rng.random() < 0.8:
            d.rectangle([x, y, x + 25, y + 35], outline="black", width=3)
page.save(t + "/page.png", dpi=(300, 300))
# a photo-like image: smooth colour fields plus noise
y, x = np.mgrid[0:3000, 0:4000]
img = np.stack([np.sin(x / 300) * 80 + 128, np.cos(y / 200) * 80 + 128, (x + y) / 7000 * 255], -1)
img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img).save(t + "/photo.jpg", quality=90)
PYEOF

ms() { # best of REP wall-clock runs of a command, in ms
	local best=999999 s e d
	for ((i = 0; i < REP; i++)); do
		s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
		d=$(((e - s) / 1000000)); ((d < best)) && best=$d
	done
	echo $best
}

pillow() { # decode+to_rgb ms, resize ms for FILE W H
	$PY - "$1" "$2" "$3" "$REP" <<'PYEOF'
import sys, time
from PIL import Image
f, w, h, rep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
bd = br = 1e9
for _ in range(rep):
    t0 = time.perf_counter(); im = Image.open(f).convert("RGB"); im.load()
    t1 = time.perf_counter(); im.resize((w, h), Image.BICUBIC)
    t2 = time.perf_counter()
    bd, br = min(bd, t1 - t0), min(br, t2 - t1)
print("%.1f %.1f" % (bd * 1e3, br * 1e3))
PYEOF
}

printf '%-34s %10s %28s %22s\n' case qvl-resize "qvl: decode/resize/patchify" "Pillow: decode/resize"
for c in "page.png --dpi 300:72" "photo.jpg"; do
	set -- $c
	f=$T/$1; shift
	size=$(bin/qvl-resize --info "$@" "$f" | sed 's/.*"resized_size":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/')
	total=$(ms bin/qvl-resize "$@" "$f")
	parts=$(build/bench/resize "$f" $size "$REP" | awk '{print $2 "/" $5 "/" $8}')
	pil=$(pillow "$f" $size | tr ' ' /)
	printf '%-34s %8s ms %25s ms %19s ms\n' "$(basename "$f") $* -> ${size/ /x}" "$total" "$parts" "$pil"
done
