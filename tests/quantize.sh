#!/usr/bin/env bash
# tests/quantize.sh: qvl-quantize writes model directories that load, refuses bad usage.
source "$(dirname "$0")/lib.sh"

Q=$BIN/qvl-quantize
check "q8 tiny" "$Q" -q -m "$TINY" --type q8 -o "$TMP/q8"
check "q8 has the config" cmp "$TINY/config.json" "$TMP/q8/config.json"
check "q8 has the tokenizer" cmp "$TINY/tokenizer.json" "$TMP/q8/tokenizer.json"
check_grep "q8 tensors" 'up_proj\.weight\.q8_scale' "$BIN/qvl-dump" "$TMP/q8/model.safetensors"
check "q4 untied" "$Q" -q -m "$UNTIED" --type q4 -o "$TMP/q4"
check_grep "q4 matrices" 'up_proj\.weight\.q4_min' "$BIN/qvl-dump" "$TMP/q4/model.safetensors"
check_grep "q4 models keep lm_head 8-bit" 'lm_head\.weight\.q8_scale' "$BIN/qvl-dump" \
    "$TMP/q4/model.safetensors"
check "q4 as f32" "$Q" -q -m "$TINY" --type q4 --as-f32 -o "$TMP/q4f"
check "no temp files left" test -z "$(ls -A "$TMP"/q8 "$TMP"/q4 | grep '\.tmp\.')"
# Quantized models load in every program: decode end to end, and the vision tower + merger
# against the golden embeddings (q8 within 5 % of max |ref|, q4 within 50 %: see
# qvl-quantize(1) for the measured errors).
check "q4 tiny" "$Q" -q -m "$TINY" --type q4 -o "$TMP/q4t"
check_grep "decode with q8 weights" '.' "$BIN/qvl-decode" -m "$TMP/q8" -p 'Hi' --max-tokens 3
check_grep "decode with q4 weights" '.' "$BIN/qvl-decode" -m "$TMP/q4t" -p 'Hi' --max-tokens 3
check_grep "decode untied q4 weights" '.' "$BIN/qvl-decode" -m "$TMP/q4" -p 'Hi' --max-tokens 3
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
G=$DATA/golden/tiny/img_main.safetensors
check "vit stream" $PY tests/vit_stream.py "$G" "$TMP/img.in"
# Measured (max abs of max |ref|): q8 0.019, q4 0.20; in bf16 precision, where the
# quantized matrices go to BF16 products in widened tiles, q8 0.023, q4 0.22.
for t in q8:0.05 q4t:0.5; do
	q=${t%:*} tol=${t#*:}
	for p in f32 bf16; do
		check "vit + merge with $q weights, $p" sh -c "'$BIN/qvl-vit' -m '$TMP/$q' \
		    --precision $p '$TMP/img.in' |
		    '$BIN/qvl-merge' -m '$TMP/$q' --precision $p > '$TMP/$q.$p.emb'"
		check "$q $p image_embeds within $tol" "$BIN/qvl-dump" -q --compare "$G" \
		    --rtol "$tol" --select image_embeds "$TMP/$q.$p.emb"
	done
done
# Prompts longer than the rows kernels' batches (an image's 142 tokens) in both precisions:
# logits at the last prompt position against the golden's.  Measured (max abs of max
# |ref|): q8 0.017 in either precision, q4 0.21 in either.
$PY tests/decode_mkstream.py "$G" "$TMP/img_main.qvl"
for t in q8:0.05 q4t:0.4; do
	q=${t%:*} tol=${t#*:}
	for p in f32 bf16; do
		check "$q $p logits within $tol" sh -c "'$BIN/qvl-decode' -m '$TMP/$q' \
		    -p 'Describe this image.' --precision $p --max-tokens 1 \
		    --logits '$TMP/$q.$p.logits' '$TMP/img_main.qvl' >/dev/null &&
		    '$BIN/qvl-dump' -q --compare '$G' --map logits=logits_last --rtol $tol \
		    '$TMP/$q.$p.logits'"
	done
done
# Why the issue's 1 % / 5 % logits targets are out of reach on these models (qvl-quantize(1),
# Quality): the bits a scalar code would need for them exceed what q8 (8.5) and q4 (5) spend.
for mg in tiny:tiny/text_only untied:untied/u_text_only; do
	check "$mg: 1 % and 5 % need more bits than q8 and q4 have" sh -c "$PY tests/ref/quant_bound.py \
	    '$DATA/models/${mg%%:*}' '$DATA/golden/${mg#*:}.safetensors' | awk '
	    /logits 1 %/ { a = \$(NF - 1) > 8.5 } /logits 5 %/ { b = \$(NF - 1) > 5 }
	    END { exit !(a && b) }'"
done
check_fails "no type" 2 "$Q" -m "$TINY" -o "$TMP/x"
check_fails "bad type" 2 "$Q" -m "$TINY" --type q3 -o "$TMP/x"
check_fails "no output" 2 "$Q" -m "$TINY" --type q8
check_fails "extra argument" 2 "$Q" -m "$TINY" --type q8 -o "$TMP/x" junk
check_fails "missing model" 1 "$Q" -m "$TMP/none" --type q8 -o "$TMP/x"
check_fails "over its input" 1 "$Q" -m "$TINY" --type q8 -o "$TINY"
check_grep "help" 'usage: qvl-quantize' "$Q" -h
# a NaN weight is a broken checkpoint: refused, naming the tensor and row, no directory left
mkdir -p "$TMP/nan" && cp "$TINY"/* "$TMP/nan"/
/usr/bin/python3 - "$TMP/nan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
t = json.loads(b[8:8 + n])['model.layers.0.mlp.up_proj.weight']
at = 8 + n + t['data_offsets'][0] + 2 * 64 * 2 + 10   # row 2, a BF16 NaN
b[at:at + 2] = struct.pack('<H', 0x7fc0)
open(p, 'wb').write(b)
PY
check_grep "NaN weight refused" 'up_proj.weight.q8: row 2: weights that are not finite' \
	"$Q" -m "$TMP/nan" --type q8 -o "$TMP/nan-q8"
check "no directory left" test ! -e "$TMP/nan-q8"
# the config is copied as it is: one the programs would refuse is refused here, before any work
mkdir -p "$TMP/badcfg" && ln -s "$TINY"/* "$TMP/badcfg"/ && rm "$TMP/badcfg/config.json"
echo '{"model_type": "qwen2_5_vl", "hidden_size": "big"}' > "$TMP/badcfg/config.json"
check_grep "bad config refused" 'config.json' "$Q" -m "$TMP/badcfg" --type q8 -o "$TMP/badcfg-q8"
check "and no directory made" test ! -e "$TMP/badcfg-q8"
# side files: one whose name is NAME_MAX long is copied (its temporary name once was too
# long); one that cannot be read fails the run, which then leaves no directory
mkdir -p "$TMP/side" && ln -s "$TINY"/* "$TMP/side"/
long=$(printf 'n%.0s' {1..250}).json
echo '{}' > "$TMP/side/$long"
check "a side file of 255 bytes' name" "$Q" -q -m "$TMP/side" --type q8 -o "$TMP/side-q8"
check "is copied" cmp "$TMP/side/$long" "$TMP/side-q8/$long"
rm "$TMP/side/$long"
ln -s /proc/self/mem "$TMP/side/notes.txt"   # a regular file whose read fails (EIO)
check_grep "an unreadable side file is named" 'side/notes.txt: read' \
	"$Q" -m "$TMP/side" --type q8 -o "$TMP/side-bad"
check "and no directory is left" test ! -e "$TMP/side-bad"
finish
