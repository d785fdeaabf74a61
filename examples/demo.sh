#!/bin/sh
# demo.sh: what `make demo` runs once the programs are built: the batch OCR example on the
# sample documents (a PDF of two pages, a scanned letter, a receipt), then the grounding
# example.  Writes $OUT/ocr/ and $OUT/grounding/ (default examples/out/).
# Environment: QVL_MODEL (default: the tiny test model), MAX_TOKENS, QVL_BIN, OUT, JOBS.
. "$(dirname "$0")/lib.sh"
if test_model; then
	: "${DEMO_TOKENS:=32}"
else
	: "${DEMO_TOKENS:=$MAX_TOKENS}"
fi
: "${JOBS:=$(nproc 2>/dev/null || echo 2)}"
[ -n "${QVL_BIN:-}" ] || QVL_BIN=$(dirname "$(command -v qvl-resize)")
dir=$OUT/ocr
mkdir -p "$dir"
# cp -p keeps the times, so a second demo finds nothing to redo
cp -p "$EXAMPLES/docs/report.pdf" "$EXAMPLES/docs/letter.png" "$EXAMPLES/docs/receipt.jpg" "$dir"
unset MAKEFLAGS MFLAGS MAKELEVEL

say "1. Batch OCR with make.  $dir holds a PDF and two images; examples/ocr.mk" \
	"renders the PDF's pages at 72 dpi, brings the scans to about 72 dpi, and makes, for" \
	"every page, out/NAME/pNNN.png.emb (image embeddings, a cache), pNNN.json (the" \
	"decoder's result) and pNNN.md, then out/NAME.md and out/NAME.log.  Pages run in" \
	"parallel (-j$JOBS)."
run "make --no-print-directory -C '$dir' -f '$EXAMPLES/ocr.mk' -j$JOBS OUT=out QVL_BIN='$QVL_BIN' MAX_TOKENS=$DEMO_TOKENS"
say "What it made:"
run "ls -l '$dir/out' '$dir/out/report'"
run "cat '$dir/out/report.log'"
run "head -n 12 '$dir/out/report.md'"
if test_model; then
	say "That text is noise: the tiny test model has random weights.  With a real checkpoint:" \
		"  make -C $dir -f $EXAMPLES/ocr.mk -j2 QVL_MODEL=~/models/Qwen2.5-VL-7B-Instruct"
fi
say "2. Make again: everything is up to date, nothing runs."
run "make --no-print-directory -C '$dir' -f '$EXAMPLES/ocr.mk' OUT=out QVL_BIN='$QVL_BIN' MAX_TOKENS=$DEMO_TOKENS"
say "A new prompt re-runs only the decoder (the embeddings are kept), e.g.:" \
	"  make -C $dir -f $EXAMPLES/ocr.mk PROMPT='Convert this page to HTML.'"

say "3. Grounding: find the total on the receipt, draw its box, crop it."
MAX_TOKENS=$DEMO_TOKENS "$EXAMPLES/grounding.sh"
say "Open $OUT/grounding/boxes.png to see the box drawn on the receipt," \
	"and $OUT/grounding/crops/ for what it cut out.  More: examples/ocr.sh, video.sh," \
	"inspect.sh; man 7 qvl."
