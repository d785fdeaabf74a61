#!/bin/bash
# cli.sh: the command-line contract every program keeps, as an audit of all of them found it
# broken in places: output files written like -o (devices and fifos in place, temporary
# files removed), '-' as an output, -h, -t/--threads, and messages that name what is wrong.
source "$(dirname "$0")/lib.sh"
IMG=$DATA/golden/tiny/img_main_main.png
IMG2=$DATA/golden/tiny/two_images_left.jpg

$BIN/qvl-resize "$IMG" >"$TMP/pix" &&
	$BIN/qvl-vit <"$TMP/pix" >"$TMP/vh" &&
	$BIN/qvl-merge <"$TMP/vh" >"$TMP/emb" || { echo "FAIL pipeline setup"; exit 1; }

# --- qvl-resize --png / --png-dir are written as -o is -------------------------------------
# a private /dev/full (never the system's: a bug here would replace it)
if mknod -m 666 "$TMP/full" c 1 7 2>/dev/null; then
	check_stderr "resize --png DEVICE: written in place" 1 "full: .*write error: No space left" \
		$BIN/qvl-resize --png "$TMP/full" -o /dev/null "$IMG"
	check "resize --png DEVICE: still a device" test -c "$TMP/full"
	rm -f "$TMP/full"
fi
mkfifo "$TMP/pngfifo"
wc -c <"$TMP/pngfifo" >"$TMP/pngfifo.n" &
check "resize --png FIFO" $BIN/qvl-resize --png "$TMP/pngfifo" -o /dev/null "$IMG"
wait
check "resize --png FIFO: the reader got the PNG" test "$(cat "$TMP/pngfifo.n")" -gt 100
check "resize --png FIFO: still a fifo" test -p "$TMP/pngfifo"
head -c 10 "$TMP/pngfifo" >/dev/null &
check_stderr "resize --png FIFO closed early: quiet exit 0" 0 "" \
	$BIN/qvl-resize --png "$TMP/pngfifo" --size 600x600 -o /dev/null "$IMG"
wait
check_stderr "resize --png over RLIMIT_FSIZE: the real error" 1 'seen\.png: (png: )?write error: File too large' \
	bash -c "ulimit -f 1; $BIN/qvl-resize --png $TMP/seen.png -o /dev/null $IMG"
check "resize --png over RLIMIT_FSIZE: no partial file" \
	bash -c "! ls $TMP/seen.png* 2>/dev/null"
# a PNG small enough for the stdio buffer fails only when flushed: still the real error
if command -v prlimit >/dev/null; then
	check_stderr "resize --png, failing at the flush: the real error" 1 'small\.png: write error: File too large' \
		prlimit --fsize=100 $BIN/qvl-resize --png "$TMP/small.png" -o /dev/null examples/video/f0.png
fi
# a planted symlink at the old predictable temporary name is not followed
ln -s "$TMP/victim" "$TMP/p.png.tmp.$$"
check "resize --png: ok" $BIN/qvl-resize --png "$TMP/p.png" -o /dev/null "$IMG"
check "resize --png: a PNG" bash -c "head -c 4 $TMP/p.png | grep -q PNG"
check "resize --png: no stray files" bash -c "! ls $TMP/victim $TMP/p.png.tmp.?????? 2>/dev/null"
check "resize --png-dir creates DIR" $BIN/qvl-resize --png-dir "$TMP/newdir" -o /dev/null "$IMG"
check "resize --png-dir: the PNG" test -s "$TMP/newdir/img_main_main.png"
# names within 11 bytes of NAME_MAX: the temp file beside them cannot be NAME.tmp.XXXXXX
long=$(printf 'a%.0s' $(seq 250))
cp "$IMG" "$TMP/$long.png"
check "resize --png-dir: a 254-byte file name" $BIN/qvl-resize --png-dir "$TMP/longdir" \
	-o "$TMP/${long}.qv" "$TMP/$long.png"
check "resize --png-dir: its PNG and -o's stream" test -s "$TMP/longdir/$long.png" -a \
	-s "$TMP/${long}.qv"
check "resize: no temp file left" test -z "$(ls -A "$TMP/longdir" | grep -v "^$long.png\$")"
check "resize: no hidden temp file left beside -o" test -z "$(ls -A "$TMP" | grep '^\.qvl\.')"
check_grep "resize --png-dir: a missing parent is named" "qvl-resize: $TMP/no/dir: No such file" \
	$BIN/qvl-resize --png-dir "$TMP/no/dir" -o /dev/null "$IMG"
# SIGINT while the PNG is written: the temporary file goes too
$BIN/qvl-resize --png "$TMP/big.png" --size 4000x4000 --max-pixels 100000000 -o /dev/null \
	"$IMG" 2>/dev/null &
pid=$!
for ((i = 0; i < 200; i++)); do compgen -G "$TMP/big.png.tmp.*" >/dev/null && break; sleep 0.05; done
kill -INT $pid 2>/dev/null
wait $pid
check_fails "resize --png, SIGINT" 130 bash -c "exit $?"
check "resize --png, SIGINT: no temporary file" bash -c "! ls $TMP/big.png* 2>/dev/null"

# --- '-' as an output path: standard output where it is free, else refused ---------------
check_fails "resize --png - with the stream on stdout: refused" 2 $BIN/qvl-resize --png - "$IMG"
check "resize --png - -o FILE: the PNG on stdout" \
	bash -c "$BIN/qvl-resize --png - -o $TMP/o.pix $IMG | head -c 4 | grep -q PNG"
check_fails "resize --png-dir -: refused" 2 $BIN/qvl-resize --png-dir - "$IMG"
check "resize: no file named -" test ! -e ./-

# --- qvl-resize -k and --video ---------------------------------------------------------------
check_fails "resize --video -k: refused" 2 $BIN/qvl-resize --video -k "$IMG" "$IMG"
head -c 300 "$IMG" >"$TMP/trunc.png"
check_grep "resize --video: frame N (FILE)" "frame 1 \(.*trunc.png\)" \
	$BIN/qvl-resize --video "$IMG" "$TMP/trunc.png"

# --- qvl-tokenize --jsonl answers each line as it comes (a co-process) ----------------------
coproc_answer() {
	python3 - "$BIN/qvl-tokenize" "$@" <<'PY'
import select, subprocess, sys
p = subprocess.Popen(sys.argv[1:] + ["-m", __import__("os").environ["QVL_MODEL"], "--jsonl"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
p.stdin.write(b'\n' + (b'[14990]\n' if "--decode" in sys.argv else b'"hello"\n'))
p.stdin.flush()
ready = select.select([p.stdout], [], [], 10)[0]
line = p.stdout.readline() if ready else b""
p.stdin.close(); p.wait()
sys.exit(0 if line.strip() in (b"[14990]", b'"hello"') else 1)
PY
}
check "tokenize --jsonl: an answer before EOF, blank line skipped" coproc_answer
check "tokenize --jsonl --decode: an answer before EOF" coproc_answer --decode

# --- closed pipes end quietly with 0; write errors name the output ------------------------
check_stderr "decode --logits /dev/stdout | head: quiet exit 0" 0 "" \
	bash -c "$BIN/qvl-decode -p hi --max-tokens 3 --logits /dev/stdout $TMP/emb | head -c 10 >/dev/null; exit \${PIPESTATUS[0]}"
check_fails "decode --logits -: refused" 2 $BIN/qvl-decode -p hi --max-tokens 3 --logits - "$TMP/emb"
check_stderr "vit >/dev/full names stdout" 1 '^qvl-vit: stdout: .*write error: No space left' \
	bash -c "$BIN/qvl-vit $TMP/pix >/dev/full"
check_stderr "vit --tap >/dev/full names stdout" 1 '^qvl-vit: stdout: .*write error' \
	bash -c "$BIN/qvl-vit --tap patch_embed $TMP/pix >/dev/full"
check_stderr "merge >/dev/full names stdout" 1 '^qvl-merge: stdout: .*write error: No space left' \
	bash -c "$BIN/qvl-merge $TMP/vh >/dev/full"
check_stderr "decode --logits /dev/full names the file" 1 '^qvl-decode: /dev/full: .*write error' \
	bash -c "$BIN/qvl-decode -p hi --max-tokens 3 --logits /dev/full $TMP/emb >/dev/null"

# --- -h: usage on stdout, exit 0; -t and --threads both work and are in the usage ------------
for p in boxes decode dump merge quantize resize tokenize vit; do
	check "qvl-$p -h: usage on stdout, exit 0" bash -c "$BIN/qvl-$p -h 2>/dev/null | grep -q usage"
done
for p in vit merge decode quantize; do
	check_grep "qvl-$p -h shows -t and --threads" '-t.*--threads|--threads.*-t' $BIN/qvl-$p -h
done
check "vit -t 1" bash -c "$BIN/qvl-vit -t 1 $TMP/pix >/dev/null"
check "vit --threads 1" bash -c "$BIN/qvl-vit --threads 1 $TMP/pix >/dev/null"
check "merge -t 1" bash -c "$BIN/qvl-merge -t 1 $TMP/vh >/dev/null"
check "decode -t 1, --threads 1" bash -c "$BIN/qvl-decode -t 1 -p hi --max-tokens 1 --text-only >/dev/null && $BIN/qvl-decode --threads 1 -p hi --max-tokens 1 --text-only >/dev/null"

# --- a crafted grid_thw whose product wraps int64 is refused, not multiplied -------------------
python3 - "$TMP" <<'PY'
import json, struct, sys
def rec(name, shape, meta, payload):
    h = json.dumps({"name": name, "dtype": "F32", "shape": shape, "meta": meta}).encode()
    h += b" " * ((-len(h)) % 8)
    return b"QVL1" + struct.pack("<I", len(h)) + h + payload
b, c = 4 * (2**20 + 1), 4 * (2**40 - 2**20 + 1)     # 1*b*c == 2**64 + 16
open(sys.argv[1] + "/wrap_vit.qvl", "wb").write(rec("vit_hidden", [16, 64], {"grid_thw": [1, b, c]}, bytes(16 * 64 * 4)))
open(sys.argv[1] + "/wrap_emb.qvl", "wb").write(rec("image_embeds", [4, 64], {"grid_thw": [1, b, c]}, bytes(4 * 64 * 4)))
PY
check_stderr "merge: a wrapping grid_thw is refused" 1 'record 0 \(vit_hidden\): grid_thw .*sides must be 1 to 1048576' \
	$BIN/qvl-merge "$TMP/wrap_vit.qvl"
check_stderr "decode: a wrapping grid_thw is refused" 1 'record 0 \(image_embeds\): grid_thw .*sides must be 1 to 1048576' \
	$BIN/qvl-decode -p hi "$TMP/wrap_emb.qvl"

# --- invalid UTF-8 in a prompt: its source and its offset there, not in the chat template ----
printf 'ab\xff' >"$TMP/inv.txt"
check_grep "decode -f: UTF-8 error names the file and its offset" '^qvl-decode: .*inv\.txt: invalid UTF-8 at byte offset 2$' \
	$BIN/qvl-decode -f "$TMP/inv.txt" --text-only
check_grep "decode -p: UTF-8 error at offset 0 of -p" '^qvl-decode: -p: invalid UTF-8 at byte offset 0$' \
	$BIN/qvl-decode -p "$(printf '\xff')" --text-only
check_grep "decode --system: UTF-8 error names --system" '^qvl-decode: --system: invalid UTF-8 at byte offset 1$' \
	$BIN/qvl-decode -p hi --system "$(printf 'x\xc3')" --text-only

# --- qvl-dump --compare counts each problem once, and nothing compared is a failure ----------
check_grep "dump --compare: a selected name missing from REF fails once" '^FAIL: 0 compared, 1 failed$' \
	$BIN/qvl-dump --compare "$TMP/vh" --select image_embeds "$TMP/emb"
check_fails "dump --compare: nothing in common fails" 1 $BIN/qvl-dump -q --compare "$TINY/model.safetensors" "$TMP/emb"
check_grep "dump --compare: the count of compared tensors" '^ok: 1 compared, 0 failed$' \
	$BIN/qvl-dump --compare "$TMP/emb" "$TMP/emb"
check_fails "dump --npy -: refused" 2 $BIN/qvl-dump --npy - "$TMP/emb"

# --- qvl-merge names a wrong shape as it is ------------------------------------------------
python3 -c 'import json,struct,sys;h=json.dumps({"name":"vit_hidden","dtype":"F32","shape":[1,48,64],"meta":{}}).encode();h+=b" "*((-len(h))%8);open(sys.argv[1],"wb").write(b"QVL1"+struct.pack("<I",len(h))+h+bytes(48*64*4))' "$TMP/vit3d"
check_grep "merge: a 3-D tensor's shape in the message" 'got F32 \[1, 48, 64\]' $BIN/qvl-merge "$TMP/vit3d"

# --- qvl-quantize: the model before the directory; -o a file or - ---------------------------
check_fails "quantize, bad model: exit 1" 1 $BIN/qvl-quantize -m "$TMP/nomodel" --type q8 -o "$TMP/qx"
check "quantize, bad model: no directory left" test ! -e "$TMP/qx"
echo x >"$TMP/afile"
check_grep "quantize -o FILE: named, not its temporary file" "qvl-quantize: $TMP/afile: not a directory" \
	$BIN/qvl-quantize --type q8 -o "$TMP/afile"
check_fails "quantize -o -: refused" 2 $BIN/qvl-quantize --type q8 -o -

# --- the repetition guard's warning counts the repeats it saw, not --max-repeat ---------------
# the tiny model's greedy answer ends in one token 32 times (the guard's 32-token minimum span)
check_grep "decode: repetition warning counts the repeats" 'repeats a cycle of 1 token 32 times' \
	$BIN/qvl-decode -p hi --max-tokens 200 --json "$TMP/emb"

# --- a stream from an earlier stage into qvl-decode is an error naming what is missing -------
check_stderr "decode <pixel_values: exit 1, names vit and merge" 1 \
	'<stdin>: record 0 is pixel_values, not image_embeds: put qvl-vit \| qvl-merge before qvl-decode' \
	bash -c "$BIN/qvl-merge <$TMP/pix | $BIN/qvl-decode -p hi --max-tokens 2"
check_stderr "decode vit_hidden: exit 1, names merge" 1 'record 0 is vit_hidden, not image_embeds: put qvl-merge before' \
	$BIN/qvl-decode -p hi --max-tokens 2 "$TMP/vh"

# --- generation_config.json: an empty eos list falls back, with a word; errors name the dir ---
mkdir -p "$TMP/gm"
for f in "$TINY"/*; do ln -sf "$f" "$TMP/gm/"; done
rm "$TMP/gm/generation_config.json"
echo '{"eos_token_id": []}' >"$TMP/gm/generation_config.json"
check_grep "decode: empty eos_token_id falls back to config.json's" \
	"gm/generation_config.json: eos_token_id is empty; stopping on config.json's eos_token_id 151645" \
	$BIN/qvl-decode -m "$TMP/gm" -p hi --text-only --max-tokens 2
echo '{"eos_token_id": "x"}' >"$TMP/gm/generation_config.json"
check_grep "decode: generation_config.json errors name the directory" \
	"^qvl-decode: $TMP/gm/generation_config.json: eos_token_id: not a token id" \
	$BIN/qvl-decode -m "$TMP/gm" -p hi --text-only --max-tokens 2

# --- messages that say what the user gave -----------------------------------------------------
check_grep "resize --max-tokens 1: in tokens, naming the minimum" \
	'max pixels 784 \(1 tokens\) is under min pixels 3136 \(4 tokens\), the preprocessor.s minimum' \
	$BIN/qvl-resize --max-tokens 1 "$IMG"
check_fails "resize: VIDEO_MAX_PIXELS=abc refused" 2 \
	env VIDEO_MAX_PIXELS=abc $BIN/qvl-resize --video --input-fps 2 -o /dev/null "$IMG" "$IMG"
echo 'Picture 1: [{"bbox_2d":[1,2,30,40]}]' >"$TMP/ans.txt"
check_grep "dump: a text file is neither, without a safetensors header length" \
	"^qvl-dump: $TMP/ans.txt: neither a qvl stream nor safetensors$" $BIN/qvl-dump "$TMP/ans.txt"

finish
