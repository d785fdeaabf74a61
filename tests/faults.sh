#!/bin/bash
# faults.sh: what every program does when the world goes wrong under it, with real files and
# pipes: a truncated or corrupt safetensors shard, a stream cut mid-record, a full disk
# (/dev/full, and RLIMIT_FSIZE for files), a closed downstream pipe, and SIGINT/SIGTERM while
# an -o file is being written.  The rule each time: a message naming the file and what is
# wrong, a non-zero exit (0 for a closed pipe: the reader wanted no more), and no partial
# output file (neither the target nor its temporary file).
source "$(dirname "$0")/lib.sh"
IMG=$DATA/golden/tiny/img_main_main.png
IMG2=$DATA/golden/tiny/two_images_left.jpg

# no_file NAME PATH: neither PATH nor a temporary file of it exists.
no_file() {
	local name=$1 path=$2 left
	left=$(ls -d "$path" "$path".tmp.* 2>/dev/null)
	if [[ -z $left ]]; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL $name: left behind: $left"; fi
}

# --- inputs: a stream at each stage of the pipeline ---------------------------------------
$BIN/qvl-resize "$IMG" >"$TMP/pix" &&
	$BIN/qvl-vit <"$TMP/pix" >"$TMP/vh" &&
	$BIN/qvl-merge <"$TMP/vh" >"$TMP/emb" || { echo "FAIL pipeline setup"; exit 1; }
PIXBYTES=$(stat -c %s "$TMP/pix")

# --- truncated and corrupt checkpoints ---------------------------------------------------
# model dir M with every file of the tiny model linked, model.safetensors copied (to damage)
damaged_model() {
	local m=$TMP/$1
	mkdir -p "$m"
	for f in "$TINY"/*; do ln -sf "$f" "$m/"; done
	rm -f "$m/model.safetensors"
	cp "$TINY/model.safetensors" "$m/model.safetensors"
	echo "$m"
}
ST=$(stat -c %s "$TINY/model.safetensors")
CUT=$(damaged_model cut); truncate -s $((ST / 2)) "$CUT/model.safetensors"
TINYHDR=$(damaged_model tinyhdr); truncate -s 4 "$TINYHDR/model.safetensors"
BADJSON=$(damaged_model badjson)
printf '\x7b\x7b' | dd of="$BADJSON/model.safetensors" bs=1 seek=8 conv=notrunc status=none
HUGEHDR=$(damaged_model hugehdr)
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$HUGEHDR/model.safetensors" conv=notrunc status=none

# A sharded copy (two shards and an index), the second shard cut short.
SHARD=$TMP/sharded
mkdir -p "$SHARD"
for f in "$TINY"/*; do [[ $f == *.safetensors ]] || ln -sf "$f" "$SHARD/"; done
/usr/bin/python3 - "$TINY/model.safetensors" "$SHARD" <<'EOF' || echo "FAIL shard setup"
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
buf = open(src, 'rb').read()
n = struct.unpack('<Q', buf[:8])[0]
hdr = json.loads(buf[8:8 + n])
data = buf[8 + n:]
names = sorted(k for k in hdr if k != '__metadata__')
shards = [names[:len(names) // 2], names[len(names) // 2:]]
index = {'metadata': {}, 'weight_map': {}}
for i, part in enumerate(shards):
	fname = 'model-%05d-of-00002.safetensors' % (i + 1)
	h, blob = {}, b''
	for k in part:
		b, e = hdr[k]['data_offsets']
		h[k] = dict(hdr[k], data_offsets=[len(blob), len(blob) + e - b])
		blob += data[b:e]
		index['weight_map'][k] = fname
	hj = json.dumps(h).encode()
	hj += b' ' * (-len(hj) % 8)
	open(out + '/' + fname, 'wb').write(struct.pack('<Q', len(hj)) + hj + blob)
json.dump(index, open(out + '/model.safetensors.index.json', 'w'))
EOF
check_stderr "sharded copy loads" 0 "" $BIN/qvl-merge -m "$SHARD" "$TMP/vh"
S2=$SHARD/model-00002-of-00002.safetensors
truncate -s $(($(stat -c %s "$S2") - 1000)) "$S2"

for m in "$CUT" "$SHARD"; do
	what=${m##*/}
	check_stderr "vit, $what checkpoint" 1 'model.*safetensors: tensor .*outside the [0-9]+ data bytes \(file truncated\?\)' \
		$BIN/qvl-vit -m "$m" "$TMP/pix"
	check_stderr "merge, $what checkpoint" 1 'file truncated' $BIN/qvl-merge -m "$m" "$TMP/vh"
	check_stderr "decode, $what checkpoint" 1 'file truncated' $BIN/qvl-decode -m "$m" -p hi "$TMP/emb"
	check_stderr "decode text-only, $what checkpoint" 1 'file truncated' \
		$BIN/qvl-decode -m "$m" -p hi --text-only
	check_stderr "quantize, $what checkpoint" 1 'file truncated' \
		$BIN/qvl-quantize -m "$m" --type q8 -o "$TMP/q-$what"
	check "quantize, $what checkpoint: no file written" \
		bash -c "[[ -z \$(ls -A $TMP/q-$what 2>/dev/null) ]]"
done
check_stderr "vit, sharded: no stdout" 1 'model-00002-of-00002.safetensors' \
	bash -c "$BIN/qvl-vit -m $SHARD $TMP/pix >$TMP/vit-out; rc=\$?; [[ -s $TMP/vit-out ]] && exit 99; exit \$rc"
check_stderr "dump, truncated file" 1 'model.safetensors: tensor .*file truncated' \
	$BIN/qvl-dump "$CUT/model.safetensors"
check_stderr "4-byte checkpoint" 1 'model.safetensors: 4 bytes, too short for a safetensors file' \
	$BIN/qvl-vit -m "$TINYHDR" "$TMP/pix"
check_stderr "header is not JSON" 1 'model.safetensors: header is not valid JSON' \
	$BIN/qvl-merge -m "$BADJSON" "$TMP/vh"
check_stderr "header length past the file" 1 'model.safetensors: header length [0-9]+ exceeds the file' \
	$BIN/qvl-decode -m "$HUGEHDR" -p hi --text-only
check_stderr "index naming a missing shard" 1 'model-00002-of-00002.safetensors: No such file' \
	bash -c "rm $S2 && $BIN/qvl-merge -m $SHARD $TMP/vh"

# --- streams cut mid-record --------------------------------------------------------------
# cut CUT FILE: the first CUT bytes of FILE in $TMP/cut
cut_at() { head -c "$1" "$2" >"$TMP/cut.qvl"; }
for at in 5 100 $((PIXBYTES - 7)); do
	cut_at $at "$TMP/pix"
	check_stderr "vit, stream cut at byte $at" 1 '<stdin>: record 0.*cut short' \
		bash -c "$BIN/qvl-vit <$TMP/cut.qvl"
	check_stderr "dump, stream cut at byte $at" 1 'record 0.*cut short' $BIN/qvl-dump "$TMP/cut.qvl"
done
cut_at $(($(stat -c %s "$TMP/vh") - 1)) "$TMP/vh"
check_stderr "merge, payload cut short" 1 '<stdin>: record 0 \(vit_hidden\): payload cut short' \
	bash -c "$BIN/qvl-merge <$TMP/cut.qvl"
cut_at 30 "$TMP/emb"
check_stderr "decode, header cut short" 1 'record 0: stream cut short in the header' \
	bash -c "$BIN/qvl-decode -p hi <$TMP/cut.qvl"
# a second record cut short after a whole one: the first is not written as if all were well
cat "$TMP/pix" "$TMP/pix" | head -c $((PIXBYTES + 1000)) >"$TMP/cut.qvl"
check_stderr "vit, second record cut short" 1 'record 1.*cut short' \
	bash -c "$BIN/qvl-vit <$TMP/cut.qvl >/dev/null"
cat "$TMP/emb" >"$TMP/garbage"; printf 'trailing garbage' >>"$TMP/garbage"
check_stderr "decode, trailing garbage" 1 'record 1: bad magic' \
	bash -c "$BIN/qvl-decode -p hi <$TMP/garbage"
# a pipe that breaks mid-payload (the writer killed): same as a cut file
check_stderr "merge, writer dies mid-payload" 1 'record 0 \(vit_hidden\): payload cut short' \
	bash -c "{ head -c 50000 $TMP/vh; kill -9 \$BASHPID; } | $BIN/qvl-merge >/dev/null"

# --- a full disk --------------------------------------------------------------------------
full() { check_stderr "$1: stdout on /dev/full" 1 "$2" bash -c "$3 >/dev/full"; }
full resize 'write error: No space left on device' "$BIN/qvl-resize $IMG"
full vit 'write error: No space left on device' "$BIN/qvl-vit $TMP/pix"
full merge 'write error: No space left on device' "$BIN/qvl-merge $TMP/vh"
full decode 'write error: No space left on device' "$BIN/qvl-decode -p hi --max-tokens 4 $TMP/emb"
full "decode --json" 'write error: No space left on device' \
	"$BIN/qvl-decode -p hi --json --max-tokens 4 $TMP/emb"
full dump 'write error: No space left on device' "$BIN/qvl-dump $TMP/pix"
full "dump -s" 'write error: No space left on device' "$BIN/qvl-dump -s $TMP/emb"
full tokenize 'write error: No space left on device' "echo hello | $BIN/qvl-tokenize"
full "tokenize --decode" 'write error: No space left on device' \
	"echo 9707 | $BIN/qvl-tokenize --decode"
BOX='{"bbox_2d": [10, 20, 110, 120], "label": "a"}'
full boxes 'write error: No space left on device' \
	"echo '$BOX' | $BIN/qvl-boxes --orig-size 364x252 --model-size 364x252"
# -o /dev/full: written in place (a device is never renamed over), and the error seen
check_stderr "resize -o /dev/full" 1 '/dev/full: .*write error: No space left on device' \
	$BIN/qvl-resize -o /dev/full "$IMG"
check_stderr "decode --logits /dev/full" 1 'write error: No space left on device' \
	$BIN/qvl-decode -p hi --max-tokens 2 --logits /dev/full "$TMP/emb"
check_stderr "boxes --draw /dev/full" 1 '/dev/full.*(write error|No space)' \
	bash -c "echo '$BOX' | $BIN/qvl-boxes --image $IMG --draw /dev/full"
check "/dev/full is still a device" test -c /dev/full
# a file that outgrows the disk (RLIMIT_FSIZE stands in): message, no partial file
fsize() { check_stderr "$1: -o over the size limit" 1 'File too large' bash -c "ulimit -f $4; $2"; no_file "$1: no partial file" "$3"; }
fsize resize "$BIN/qvl-resize -o $TMP/f.pix $IMG" "$TMP/f.pix" 64
fsize "decode --logits" "$BIN/qvl-decode -p hi --max-tokens 2 --logits $TMP/f.logits $TMP/emb >/dev/null" "$TMP/f.logits" 64
fsize "boxes --draw" "echo '$BOX' | $BIN/qvl-boxes --image $IMG2 --draw $TMP/f.png >/dev/null" "$TMP/f.png" 4
fsize "dump --npy" "$BIN/qvl-dump --npy $TMP/npy $TMP/pix >/dev/null" "$TMP/npy/pixel_values.npy" 64
mkdir -p "$TMP/npy.ok"
check_stderr "dump --npy keeps whole files only" 1 'File too large' \
	bash -c "ulimit -f 400; $BIN/qvl-dump --npy $TMP/npy.ok $TMP/emb $TMP/pix >/dev/null"
check "dump --npy: the file that fit is whole" bash -c "[[ \$(stat -c %s $TMP/npy.ok/image_embeds.npy) -gt 29952 ]]"
no_file "dump --npy: the one that did not fit is absent" "$TMP/npy.ok/pixel_values.npy"

# --- a closed downstream pipe: quiet, exit 0 ----------------------------------------------
# closed NAME INPUT CMD: CMD <INPUT | head -c 100 leaves CMD quiet with exit 0 (the input is
# a file, so only CMD's own status counts)
closed() {
	check_stderr "$1: | head -c 100" 0 "" bash -c "$3 <$2 | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}"
}
cat "$TMP/vh" "$TMP/vh" "$TMP/vh" >"$TMP/vh3"
cat "$TMP/emb" "$TMP/emb" >"$TMP/emb2"
yes hello world | head -c 200000 >"$TMP/words"
yes '"hello"' | head -n 20000 >"$TMP/words.jsonl"
yes 9707 | head -n 50000 >"$TMP/ids"
yes "$BOX" | head -n 20000 >"$TMP/boxes"
closed resize /dev/null "$BIN/qvl-resize $IMG"
closed vit "$TMP/pix" "$BIN/qvl-vit"
closed "vit --tap" "$TMP/pix" "$BIN/qvl-vit --tap patch_embed --tap block.0"
closed merge "$TMP/vh3" "$BIN/qvl-merge"
closed decode "$TMP/emb" "$BIN/qvl-decode -p hi --max-tokens 2000 --ignore-eos --max-repeat 0"
closed "decode --json --each" "$TMP/emb2" "$BIN/qvl-decode -p hi --json --max-tokens 100 --max-repeat 0 --each"
closed dump "$TMP/pix" "$BIN/qvl-dump -n 100000"
closed "dump safetensors" /dev/null "$BIN/qvl-dump -n 10000 $TINY/model.safetensors"
closed tokenize "$TMP/words" "$BIN/qvl-tokenize"
closed "tokenize --decode" "$TMP/ids" "$BIN/qvl-tokenize --decode"
closed "tokenize --jsonl" "$TMP/words.jsonl" "$BIN/qvl-tokenize --jsonl"
closed boxes "$TMP/boxes" "$BIN/qvl-boxes --orig-size 364x252 --model-size 364x252"
closed "boxes tsv" "$TMP/boxes" "$BIN/qvl-boxes --format tsv --orig-size 364x252 --model-size 364x252"
# and the same when the program is started with SIGPIPE at its default (a shell's usual)
check_stderr "vit, SIGPIPE default: still exit 0" 0 "" \
	bash -c "trap - PIPE; $BIN/qvl-vit $TMP/pix | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}"

# --- SIGINT / SIGTERM while an -o file is being written ------------------------------------
# wait_for GLOB: until a file matching GLOB exists (5 s at most)
wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		compgen -G "$1" >/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# interrupted NAME SIG STATUS TARGET CMD...: CMD runs in the background until TARGET's temp
# file exists, gets SIG, and must exit with STATUS leaving neither TARGET nor its temp.
interrupted() {
	local name=$1 sig=$2 want=$3 target=$4; shift 4
	"$@" 2>"$TMP/.sigerr" &
	local pid=$!
	if ! wait_for "$target.tmp.*"; then
		_failed=$((_failed + 1)); echo "FAIL $name: no temporary file appeared"
		kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null; return
	fi
	kill -"$sig" $pid
	wait $pid
	local rc=$?
	if [[ $rc -eq $want ]]; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL $name: exit $rc, want $want"; cat "$TMP/.sigerr"; fi
	no_file "$name: no partial file" "$target"
}
# resize: the output is opened before the images are read; the fifo never delivers one
mkfifo "$TMP/slow.png"
interrupted "resize -o, SIGTERM" TERM 143 "$TMP/s.pix" $BIN/qvl-resize -o "$TMP/s.pix" "$TMP/slow.png"
interrupted "resize -o, SIGINT" INT 130 "$TMP/s.pix" $BIN/qvl-resize -o "$TMP/s.pix" "$TMP/slow.png"
# a page read halfway: the fifo gets half a PNG, then stalls
( head -c 2000 "$IMG"; sleep 3 ) >"$TMP/slow.png" &
feeder=$!
interrupted "resize -o, SIGTERM mid-image" TERM 143 "$TMP/s.pix" $BIN/qvl-resize -o "$TMP/s.pix" "$TMP/slow.png"
kill $feeder 2>/dev/null; wait $feeder 2>/dev/null
# decode --logits: the answer goes to a reader that never reads, so decoding stalls mid-way
mkfifo "$TMP/stall"
sleep 10 <"$TMP/stall" &
sleeper=$!
interrupted "decode --logits, SIGTERM" TERM 143 "$TMP/s.logits" \
	$BIN/qvl-decode -p hi --max-tokens 100000 --ignore-eos --max-repeat 0 \
	--logits "$TMP/s.logits" "$TMP/emb" >"$TMP/stall"
kill $sleeper 2>/dev/null; wait $sleeper 2>/dev/null
# an -o target that already exists is untouched by an interrupted run
echo old >"$TMP/keep.pix"
$BIN/qvl-resize -o "$TMP/keep.pix" "$TMP/slow.png" 2>/dev/null &
pid=$!
wait_for "$TMP/keep.pix.tmp.*" && kill -HUP $pid
wait $pid 2>/dev/null
check_fails "resize -o over an old file, SIGHUP" 129 bash -c "exit $?"
check "the old file is intact" grep -qx old "$TMP/keep.pix"
no_file "no temporary file" "$TMP/keep.pix.tmp"

finish
