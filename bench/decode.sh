#!/bin/bash
# bench/decode.sh [MODEL]: qvl-decode on a model of the real 3B shapes (default
# /work/models/3b, random weights are fine): prefill tokens/s of a ~1000-token prompt with one
# image (random embeddings, grid 1x56x68 = 952 vision tokens), decode tokens/s over 128
# tokens, peak RSS, at 2 threads; next to the memory-bandwidth bound measured in the same run
# (weight bytes per token / streaming-read GB/s).  The machines are shared: quote ratios.
set -eu
cd "$(dirname "$0")/.."
M=${1:-${QVL_MODEL:-/work/models/3b}}
T=${THREADS:-2}
make -s bin/qvl-decode build/bench/decode build/bench/membw >/dev/null
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
hidden=$(/usr/bin/python3 -c "import json; print(json.load(open('$M/config.json'))['hidden_size'])")
/usr/bin/python3 - "$TMP/img.qvl" "$hidden" <<'PY'
import json, random, struct, sys
out, d = sys.argv[1], int(sys.argv[2])
rows = 56 * 68 // 4
random.seed(1)
payload = struct.pack('<%df' % (rows * d), *(random.gauss(0, 0.5) for _ in range(rows * d)))
hdr = json.dumps({'name': 'image_embeds', 'dtype': 'F32', 'shape': [rows, d],
    'meta': {'source': 'random', 'grid_thw': [1, 56, 68], 'kind': 'image'}}).encode()
hdr += b' ' * ((-(8 + len(hdr))) % 8)
open(out, 'wb').write(b'QVL1' + struct.pack('<I', len(hdr)) + hdr + payload)
PY
bytes=$(build/bench/decode "$M" | awk '{ split($2, kv, "="); print kv[2] }')
bw=$(build/bench/membw -t "$T" -m 1024 -r 3 | sed 's/.*GB\/s=\([0-9.]*\).*/\1/')
if ! /usr/bin/time -v bin/qvl-decode -m "$M" -t "$T" -p 'Read all the text in the image.' \
	--json --max-tokens "${TOKENS:-128}" --max-repeat 0 --ignore-eos "$TMP/img.qvl" \
	>"$TMP/out.json" 2>"$TMP/time"; then
	echo "bench/decode.sh: qvl-decode failed:" >&2
	tail -n 30 "$TMP/time" >&2
	exit 1
fi
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time")
/usr/bin/python3 - "$TMP/out.json" "$bytes" "$bw" "$rss" "$T" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
nbytes, bw, rss, t = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pt, ms = r['prompt_tokens'], r['timings']['prefill_ms']
dec = r['timings']['decode_tokens_per_s']
bound = bw * 1e9 / nbytes
print('decode bench: threads=%s prompt_tokens=%d completion_tokens=%d' % (t, pt, r['completion_tokens']))
print('  prefill      %.1f tokens/s (%.1f s)' % (pt / (ms / 1e3), ms / 1e3))
print('  decode       %.2f tokens/s' % dec)
print('  bound        %.2f tokens/s = %.2f GB/s streaming read / %.2f GB of weights per token' % (bound, bw, nbytes / 1e9))
print('  ratio        %.2f of the bandwidth bound' % (dec / bound))
print('  peak RSS     %.2f GB' % (rss / 1e6))
PY
