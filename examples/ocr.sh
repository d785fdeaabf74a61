#!/bin/sh
# ocr.sh [IMAGE]: one page to text, in one line of shell.
# Environment: QVL_MODEL, MAX_TOKENS, QVL_BIN (see lib.sh).
. "$(dirname "$0")/lib.sh"
page=${1:-$EX/docs/letter.png}

say "One page to text: qvl-resize brings the scan to about 72 dpi (--dpi auto reads its" \
	"density), qvl-vit and qvl-merge turn it into image embeddings, qvl-decode reads it."
run "qvl-resize --dpi auto '$page' | qvl-vit | qvl-merge | qvl-decode --max-tokens $MAX_TOKENS -p 'Read all the text on this page.'"
