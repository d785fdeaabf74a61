#!/bin/bash
# limits.sh: every size read from a file is checked before it is allocated.  Pixel bombs
# (PNG and JPEG headers claiming 65535x65535), stream headers claiming terabytes, over-long
# headers, overflowing shapes, safetensors headers and tensors past the file, configs with
# absurd sizes, and requests bigger than the machine's memory (QVL_MEM_LIMIT stands in for a
# small machine) all fail fast with a message naming the numbers.  The programs run under
# `ulimit -v` where a missed check would mean a big allocation.
source "$(dirname "$0")/lib.sh"
IMG=$DATA/golden/tiny/img_main_main.png
JPG=$DATA/golden/tiny/two_images_left.jpg
PY=/usr/bin/python3

# under 2 GB of address space: a check that is missed shows up as "out of memory" or a crash
small() { bash -c 'ulimit -v 2000000; exec "$@"' small "$@"; }

# --- pixel bombs --------------------------------------------------------------------------
$PY - "$IMG" "$JPG" "$TMP" <<'EOF' || echo "FAIL fixtures"
import struct, sys, zlib
png, jpg, tmp = sys.argv[1:]
def chunk(t, d):
	return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
# a valid PNG header for 65535x65535 RGB, then a few compressed rows of nothing
ihdr = struct.pack('>IIBBBBB', 65535, 65535, 8, 2, 0, 0, 0)
idat = zlib.compress(b'\0' * 65536)
open(tmp + '/bomb.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
	chunk(b'IDAT', idat) + chunk(b'IEND', b''))
# the real JPEG with its frame header (SOF) claiming 65000x65000
b = bytearray(open(jpg, 'rb').read())
i = 2
while i < len(b):
	m = b[i + 1]
	if m in (0xc0, 0xc1, 0xc2):
		struct.pack_into('>HH', b, i + 5, 65000, 65000)
		break
	i += 2 + struct.unpack('>H', b[i + 2:i + 4])[0]
open(tmp + '/bomb.jpg', 'wb').write(b)
EOF
check_stderr "PNG bomb" 1 'bomb.png: image is 65535x65535 = 4294836225 pixels, over the limit of 178956970 \(--max-input-pixels\)' \
	small $BIN/qvl-resize "$TMP/bomb.png"
check_stderr "JPEG bomb" 1 'bomb.jpg: image is 65000x65000 = 4225000000 pixels, over the limit' \
	small $BIN/qvl-resize "$TMP/bomb.jpg"
check_stderr "PNG bomb on stdin" 1 '<stdin>: image is 65535x65535' \
	bash -c "$BIN/qvl-resize - <$TMP/bomb.png"
check_stderr "PNG bomb in qvl-boxes --draw" 1 'bomb.png: image is 65535x65535' \
	bash -c "echo '{\"bbox_2d\": [1, 2, 3, 4]}' | $BIN/qvl-boxes --image $TMP/bomb.png --draw $TMP/d.png"
check "no drawing left" test ! -e "$TMP/d.png"
check_stderr "--max-input-pixels lowers the limit" 1 'image is 370x250 = 92500 pixels, over the limit of 92499' \
	$BIN/qvl-resize --max-input-pixels 92499 "$IMG"
check "--max-input-pixels at the size passes" $BIN/qvl-resize --max-input-pixels 92500 -o "$TMP/ok.pix" "$IMG"
check_stderr "--max-input-pixels is bounded" 2 'max-input-pixels' $BIN/qvl-resize --max-input-pixels 0 "$IMG"

# --- memory the machine does not have (QVL_MEM_LIMIT plays a small machine) ------------------
check_stderr "decoding needs more than there is" 1 'decoding a 370x250 image needs 0.6 MB but only 0.1 MB of memory is available' \
	env QVL_MEM_LIMIT=100K $BIN/qvl-resize "$IMG"
check_stderr "an upscale past memory" 1 'image: [0-9]+x[0-9]+ needs [0-9.]+ GB but only 1.07 GB' \
	env QVL_MEM_LIMIT=1G $BIN/qvl-resize --min-pixels 2000000000 --max-pixels 4000000000 "$IMG"
check_stderr "pixel_values past memory" 1 'patchify: pixel_values needs [0-9.]+ MB but only 10.5 MB' \
	env QVL_MEM_LIMIT=10M $BIN/qvl-resize --min-pixels 1000000 "$IMG"
check "QVL_MEM_LIMIT=0 turns the check off" env QVL_MEM_LIMIT=0 $BIN/qvl-resize -o "$TMP/ok.pix" "$IMG"
# a typo in QVL_CPU does not leave the kernels (and AMX) as they were, unseen
check_stderr "QVL_CPU names no level" 1 "QVL_CPU: 'avx-512' is not generic, avx2, avx512 or avx512bf16" \
	env QVL_CPU=avx-512 $BIN/qvl-vit -m "$TINY" "$TMP/ok.pix"
check "QVL_CPU empty is unset" sh -c "QVL_CPU= $BIN/qvl-vit -m $TINY $TMP/ok.pix >/dev/null"

# --- streams ------------------------------------------------------------------------------
# rec NAME DTYPE SHAPE [PAYLOAD-BYTES]: a record header (and that many zero bytes)
rec() {
	$PY - "$@" <<'EOF'
import json, struct, sys
name, dtype, shape = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
pay = int(sys.argv[4]) if len(sys.argv) > 4 else 0
h = json.dumps({'name': name, 'dtype': dtype, 'shape': shape, 'meta': {}}).encode()
h += b' ' * (-len(h) % 8)
sys.stdout.buffer.write(b'QVL1' + struct.pack('<I', len(h)) + h + b'\0' * pay)
EOF
}
rec big F32 '[1099511627776]' 4096 >"$TMP/tera.qvl"
check_stderr "a terabyte payload claimed, 4 KB sent (file)" 1 'record 0 \(big\): payload cut short: got 4096 of 4398046511104 bytes' \
	small $BIN/qvl-dump "$TMP/tera.qvl"
check_stderr "a terabyte payload claimed, 4 KB sent (pipe)" 1 'record 0 \(big\): payload (cut short|too large)' \
	bash -c "cat $TMP/tera.qvl | { ulimit -v 2000000; $BIN/qvl-vit; }"
check_stderr "a terabyte payload claimed, into merge" 1 'record 0 \(big\)' \
	bash -c "cat $TMP/tera.qvl | { ulimit -v 2000000; $BIN/qvl-merge; }"
check_stderr "a terabyte payload claimed, into decode" 1 'record 0 \(big\)' \
	bash -c "cat $TMP/tera.qvl | { ulimit -v 2000000; $BIN/qvl-decode -p hi; }"
rec over F32 '[4611686018427387904, 4]' >"$TMP/ovf.qvl"
check_stderr "a shape whose size overflows" 1 'record 0.*(overflow|too large)' $BIN/qvl-dump "$TMP/ovf.qvl"
rec neg F32 '[-1, 4]' >"$TMP/neg.qvl"
check_stderr "a negative shape" 1 'record 0.*negative' $BIN/qvl-dump "$TMP/neg.qvl"
printf 'QVL1\x08\x00\x20\x00' >"$TMP/hdr.qvl"
check_stderr "a 2 MiB header" 1 'record 0: header of 2097160 bytes is over the 1 MiB limit' $BIN/qvl-dump "$TMP/hdr.qvl"
printf 'QVL1\xf8\xff\xff\xff' >"$TMP/hdr4g.qvl"
check_stderr "a 4 GiB header" 1 'header of 4294967288 bytes is over the 1 MiB limit' small $BIN/qvl-vit "$TMP/hdr4g.qvl"
rec deep F32 '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' 4 >"$TMP/deep.qvl"
check_stderr "too many dimensions" 1 'shape.*at most' $BIN/qvl-dump "$TMP/deep.qvl"

# --- checkpoints and configs --------------------------------------------------------------
mkmodel() { # DIR: the tiny model's files linked, for one of them to be replaced
	mkdir -p "$1"; for f in "$TINY"/*; do ln -sf "$f" "$1/"; done
}
mkmodel "$TMP/st"; rm "$TMP/st/model.safetensors"
$PY - "$TMP/st/model.safetensors" <<'EOF'
import json, struct, sys
# a tensor claiming 2^31 x 2^31 BF16 with offsets that fit the file: the shape must not win
h = json.dumps({'x': {'dtype': 'BF16', 'shape': [2147483648, 2147483648], 'data_offsets': [0, 8]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + b'\0' * 8)
EOF
check_stderr "a tensor bigger than its bytes" 1 'tensor x: 8 data bytes for a shape needing 9223372036854775808' \
	small $BIN/qvl-dump "$TMP/st/model.safetensors"
printf '\x00\x00\x00\x00\x00\x01\x00\x00' >"$TMP/hdr.safetensors"
check_stderr "a safetensors header of 2^40 bytes" 1 'header length 1099511627776 exceeds the file \(8 bytes\) or the 100 MB limit' \
	small $BIN/qvl-dump "$TMP/hdr.safetensors"
mkmodel "$TMP/cfg"; rm "$TMP/cfg/config.json"
sed 's/"num_hidden_layers": *3/"num_hidden_layers": 1000000000/' "$TINY/config.json" >"$TMP/cfg/config.json"
check_stderr "a config with 10^9 layers" 1 'config.json: num_hidden_layers = 1000000000 is outside \[1, 4096\]' \
	small $BIN/qvl-decode -m "$TMP/cfg" -p hi --text-only
head -c $((17 << 20)) /dev/zero | tr '\0' ' ' >"$TMP/cfg/config.json"
check_stderr "a 17 MiB config" 1 'config.json: 17825792 bytes, over the 16777216-byte limit' \
	$BIN/qvl-merge -m "$TMP/cfg" /dev/null

# --- token counts -------------------------------------------------------------------------
mkmodel "$TMP/ctx"; rm "$TMP/ctx/config.json"
sed 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 16/' "$TINY/config.json" >"$TMP/ctx/config.json"
check_stderr "a prompt longer than the context" 1 'the prompt has [0-9]+ tokens; the model.s context is 16' \
	$BIN/qvl-decode -m "$TMP/ctx" -p "$(printf 'word %.0s' {1..40})" --text-only
check "max tokens are cut to the context" bash -c "$BIN/qvl-decode -p hi --text-only --json \
	--max-tokens 1000000000 --max-repeat 4 | grep -q finish_reason"
# ids outside the vocabulary decode to nothing (as the tokenizers library does), never a crash
check "an id outside the vocabulary" bash -c "echo 999999999 | $BIN/qvl-tokenize --decode | cmp -s - /dev/null"
check_stderr "an id past int32" 1 "'99999999999' is not a token id" \
	bash -c "echo 99999999999 | $BIN/qvl-tokenize --decode"

# what the vision tower and the KV cache will need is asked for before it is allocated
"$BIN/qvl-resize" "$DATA/golden/tiny/img_main_main.png" > "$TMP/pv.qvl"
check_grep "vision activations checked first" "vision tower: activations for 468 patches needs" \
	env QVL_MEM_LIMIT=100K "$BIN/qvl-vit" -m "$TINY" "$TMP/pv.qvl"
check_grep "KV cache checked first" "KV cache of 2020 tokens needs" \
	env QVL_MEM_LIMIT=100K "$BIN/qvl-decode" -m "$TINY" -p hi --text-only --max-tokens 2000
finish
