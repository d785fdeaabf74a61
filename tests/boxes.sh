#!/bin/bash
# boxes.sh: qvl-boxes on handwritten answers and qvl-decode --json results (tests/data/boxes):
# expected outputs, mapping options, drawing and crops, bad usage and bad input.
source "$(dirname "$0")/lib.sh"
B=$BIN/qvl-boxes
D=$DATA/boxes
G=$DATA/golden/tiny

# Width and height of a PNG from its IHDR.
png_size() {
	od -A n -t u1 -j 16 -N 8 "$1" | awk '{ printf "%dx%d\n", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }'
}

same() { # same NAME WANT CMD...: CMD's stdout equals file WANT
	local name=$1 want=$2; shift 2
	check "$name" bash -c '"$@" 2>/dev/null | diff -u "$0" -' "$want" "$@"
}

check help "$B" -h
check_grep help-text 'usage: qvl-boxes' "$B" -h

# Expected outputs: meta from qvl-decode --json, --image, explicit sizes, points, tsv.
same decode-one "$D/decode_one.out" "$B" "$D/decode_one.jsonl"
same decode-two "$D/decode_two.out" "$B" "$D/decode_two.jsonl"
same decode-pdf-pt "$D/decode_pdf_pt.out" "$B" --units pt "$D/decode_pdf.jsonl"
same mixed-tsv "$D/mixed_tsv.out" "$B" --orig-size 1000x800 --model-size 500x400 --format tsv "$D/mixed.txt"
same image-file "$D/json_fence_image.out" "$B" --image tests/data/golden/tiny/img_main_main.png "$D/json_fence.txt"
same stdin "$D/decode_one.out" bash -c "\"$B\" < \"$D/decode_one.jsonl\""
check_grep zero-area-warns 'box 5 \("边框"\): no area' "$B" "$D/decode_one.jsonl"
check_grep truncated-recovered '"line 3"' "$B" "$D/json_truncated.txt"
check_grep no-size-warns 'no image size known' "$B" "$D/tags.txt"
check_grep malformed-warns '1 box with unreadable' "$B" --orig-size 100x100 "$D/tokens.txt"
check_grep none-warns 'no boxes found' "$B" "$D/none.txt"

# --image recomputes qvl-resize's size: 370x250 -> 364x252 by default; --dpi 300:72 first
# scales to 89x60 -> 84x56; --units pt then uses 300 DPI.
echo '[{"bbox_2d": [0, 0, 364, 252]}]' > "$TMP/whole.txt"
check_grep image-whole '"bbox": \[0, 0, 370, 250\]' "$B" --image "$G/img_main_main.png" "$TMP/whole.txt"
echo '[{"bbox_2d": [0, 0, 84, 56]}]' > "$TMP/dpi.txt"
check_grep image-dpi '"bbox": \[0, 0, 370, 250\]' "$B" --image "$G/img_main_main.png" --dpi 300:72 "$TMP/dpi.txt"
check_grep image-dpi-pt '"bbox": \[0, 0, 88.8, 60\]' "$B" --image "$G/img_main_main.png" --dpi 300:72 --units pt "$TMP/dpi.txt"
echo '[{"bbox_2d": [0, 0, 140, 84]}]' > "$TMP/maxpix.txt"
check_grep image-maxpix '"bbox": \[0, 0, 370, 250\]' "$B" --image "$G/img_main_main.png" --max-pixels 15680 "$TMP/maxpix.txt"
check_grep norm1000 '"bbox": \[0, 0, 134.68, 63\]' "$B" --image "$G/img_main_main.png" --coords norm1000 "$TMP/whole.txt"
check_grep coords-override '"bbox": \[211, 412, 577, 891\]' "$B" --orig-size 1000x1000 --model-size 1000x1000 --coords abs "$D/tags.txt"
check_grep pt-no-dpi 'density is unknown' "$B" --units pt "$D/decode_one.jsonl"
check_grep image-index '"image": ".*two_images_right.png", "label": "left thing"' "$B" --image-index 2 "$D/decode_two.jsonl"

# --orig-size alone recomputes the model's size like qvl-resize: checked against its --info
# for odd sizes, with and without --dpi 300:72 and a small max-pixels.
if [[ -x $BIN/qvl-resize ]]; then
	for size in 1001x777 333x97 29x3001 4099x2731 2480x3508 57x57; do
		for opts in "" "--dpi 300:72" "--max-pixels 15680" "--min-pixels 200704"; do
			info=$("$BIN/qvl-resize" --info --assume-size "$size" $opts 2>/dev/null)
			rw=$(sed -n 's/.*"resized_size":\[\([0-9]*\),\([0-9]*\)\].*/\1/p' <<<"$info")
			rh=$(sed -n 's/.*"resized_size":\[\([0-9]*\),\([0-9]*\)\].*/\2/p' <<<"$info")
			[[ -n $rw ]] || continue
			echo "[{\"bbox_2d\": [0, 0, $rw, $rh]}]" > "$TMP/r.txt"
			check_grep "resize-$size${opts// /}" "\"bbox\": \\[0, 0, ${size%x*}, ${size#*x}\\]" \
				"$B" --orig-size "$size" $opts "$TMP/r.txt"
		done
	done
fi

# Drawing and crops: every box with an area becomes DIR/NNN.png of its pixel size; points and
# empty boxes do not.
check draw "$B" --draw "$TMP/one.png" --crop "$TMP/crops" "$D/decode_one.jsonl"
check draw-size test "$(png_size "$TMP/one.png")" = 370x250
check crop-names test "$(cd "$TMP/crops" && echo *)" = "001.png 002.png 004.png"
check crop-whole test "$(png_size "$TMP/crops/001.png")" = 370x250
check crop-quarter test "$(png_size "$TMP/crops/002.png")" = 93x63
check crop-corner test "$(png_size "$TMP/crops/004.png")" = 66x52
check draw-two "$B" --draw "$TMP/two.png" "$D/decode_two.jsonl"
check draw-two-size test "$(png_size "$TMP/two.png")" = 220x150
check_grep draw-two-warns 'box 2 is on image 2' "$B" --draw "$TMP/two.png" "$D/decode_two.jsonl"
check draw-image "$B" --image "$G/img_main_main.png" --draw "$TMP/fence.png" "$D/json_fence.txt"

# Bad usage (2) and bad input (1); no partial output file.
check_fails bad-coords 2 "$B" --coords pixels "$D/tags.txt"
check_fails bad-size 2 "$B" --model-size 12 "$D/tags.txt"
check_fails bad-dpi 2 "$B" --dpi 300 "$D/tags.txt"
check_fails bad-units 2 "$B" --units cm "$D/tags.txt"
check_fails two-files 2 "$B" "$D/tags.txt" "$D/html.txt"
check_fails bad-index 2 "$B" --image-index 3 "$D/decode_two.jsonl"
check_fails bad-option 2 "$B" --frobnicate
check_fails missing-file 1 "$B" "$TMP/nope.txt"
check_fails missing-image 1 "$B" --image "$TMP/nope.png" "$D/tags.txt"
check_fails draw-no-image 1 "$B" --draw "$TMP/x.png" "$D/tags.txt"
check no-partial test ! -e "$TMP/x.png"
echo '{"text": "[]", "finish_reason": "stop", "images": [{"orig_size": "big"}]}' > "$TMP/badmeta.jsonl"
check_fails bad-meta 1 "$B" "$TMP/badmeta.jsonl"
check_grep bad-meta-says 'orig_size' "$B" "$TMP/badmeta.jsonl"
echo '{"text": "[{\"bbox_2d\": [1, 2, 3, 4]}]", "finish_reason": "stop", "images": [{"source": "'"$G"'/two_images_right.png", "orig_size": [370, 250]}]}' > "$TMP/wrongimg.jsonl"
check_fails wrong-image 1 "$B" --draw "$TMP/w.png" "$TMP/wrongimg.jsonl"

# qvl-decode --json input with a line that is not an answer (a batch cut short, a message
# mixed in): the good lines' boxes are printed, the bad line is named, exit 1.  A BOM is fine.
{ cat "$D/decode_one.jsonl"; head -c 100 "$D/decode_one.jsonl"; } > "$TMP/cut.jsonl"
check_fails cut-short 1 "$B" "$TMP/cut.jsonl"
check_grep cut-short-says 'cut.jsonl: line 2: not an answer of qvl-decode --json' "$B" "$TMP/cut.jsonl"
check cut-short-keeps bash -c '"$0" "$1" 2>/dev/null | diff -u "$2" -' "$B" "$TMP/cut.jsonl" "$D/decode_one.out"
{ echo "qvl-decode: warning: x"; cat "$D/decode_one.jsonl"; } > "$TMP/mixed.jsonl"
check_fails mixed-in 1 "$B" "$TMP/mixed.jsonl"
check_grep mixed-in-says 'line 1: not an answer' "$B" "$TMP/mixed.jsonl"
{ printf '\xef\xbb\xbf'; cat "$D/decode_one.jsonl"; } > "$TMP/bom.jsonl"
same bom "$D/decode_one.out" "$B" "$TMP/bom.jsonl"

# Meta: images must be a list; dpi_scale is what qvl-resize --dpi did (370x250 at 0.24 ->
# 89x60 -> 84x56); a size error names the meta, not an option; a meta without orig_size
# has its source read.
T='"text": "[{\"bbox_2d\": [0, 0, 84, 56]}]", "finish_reason": "stop"'
echo "{$T, \"images\": \"x\"}" > "$TMP/m1.jsonl"
check_fails meta-images-list 1 "$B" "$TMP/m1.jsonl"
echo "{$T, \"images\": [{\"orig_size\": [370, 250], \"dpi_scale\": [0.24, 0.24]}]}" > "$TMP/m2.jsonl"
check_grep meta-dpi-scale '"bbox": \[0, 0, 370, 250\]' "$B" "$TMP/m2.jsonl"
echo "{$T, \"images\": [{\"orig_size\": [1e10, 1e10]}]}" > "$TMP/m3.jsonl"
check_grep meta-size-named 'm3.jsonl: line 1: image 1: smart_resize' "$B" "$TMP/m3.jsonl"
echo "{$T, \"images\": [{\"source\": \"$G/img_main_main.png\"}]}" > "$TMP/m4.jsonl"
check_grep meta-source-read '"bbox": \[0, 0, 370, 250\]' "$B" --dpi 300:72 "$TMP/m4.jsonl"
check_fails meta-source-missing 1 bash -c "sed 's|img_main_main|nope|' '$TMP/m4.jsonl' | '$B'"

# --image is checked against the meta whatever is output.
check_fails image-differs 1 "$B" --image "$G/two_images_right.png" "$D/decode_one.jsonl"
check_fails image-missing 1 "$B" --image "$TMP/nope.png" "$D/decode_one.jsonl"
check_grep orig-size-quoted "got '0x100'" "$B" --orig-size 0x100 "$D/tags.txt"
# '-' is no file for --draw (standard output has the boxes) nor --crop; a fifo whose reader
# is gone ends quietly, as every closed pipe does
check_fails draw-dash 2 "$B" --draw - --orig-size 10x10 "$D/tags.txt"
check_fails crop-dash 2 "$B" --crop - --orig-size 10x10 "$D/tags.txt"
mkfifo "$TMP/drawfifo"
(exec 3<"$TMP/drawfifo"; exec 3<&-) &
check draw-fifo-closed "$B" --image "$PWD/examples/docs/receipt.jpg" --draw "$TMP/drawfifo" \
	--orig-size 384x760 "$D/tags.txt"
wait
# a box on an image without a file says which image and what the file was for
check_grep crop-no-file "image 1: no file to crop from: give --image" "$B" --orig-size 200x100 \
	--crop "$TMP/crops" "$D/tags.txt"

finish
