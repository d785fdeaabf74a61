#!/bin/sh
# grounding.sh [IMAGE [WHAT]]: find things in an image, draw their boxes, crop them out.
# Writes $OUT/grounding/ (default examples/out/grounding/): answer.json, boxes.jsonl,
# boxes.png, crops/.  Environment: QVL_MODEL, MAX_TOKENS, QVL_BIN, OUT (see lib.sh).
. "$(dirname "$0")/lib.sh"
img=${1:-$EX/docs/receipt.jpg}
what=${2:-the total amount}
dir=$OUT/grounding
rm -rf "$dir"
mkdir -p "$dir"

say "Ask for boxes.  Qwen2.5-VL answers with bbox_2d JSON in pixels of the image it saw;" \
	"--json keeps that image's sizes (the meta) with the answer."
run "qvl-resize '$img' | qvl-vit | qvl-merge | qvl-decode --json --max-tokens $MAX_TOKENS -p 'Locate $what in the image and output its bbox coordinates in JSON format.' > '$dir/answer.json'"
say "qvl-boxes maps every box back to pixels of the original image, draws them, crops them:"
run "qvl-boxes --draw '$dir/boxes.png' --crop '$dir/crops' < '$dir/answer.json' | tee '$dir/boxes.jsonl'"

if [ ! -s "$dir/boxes.jsonl" ] && [ "$img" = "$EX/docs/receipt.jpg" ]; then
	say "No boxes in that answer.  This is the shape of a real checkpoint's answer (written" \
		"here by hand, for the sample receipt), which qvl-boxes maps the same way, given" \
		"the original image:"
	cat > "$dir/answer-example.txt" <<'ANSWER'
```json
[
	{"bbox_2d": [24, 450, 368, 487], "label": "TOTAL 26.73"}
]
```
ANSWER
	run "cat '$dir/answer-example.txt'"
	run "qvl-boxes --image '$img' --draw '$dir/boxes.png' --crop '$dir/crops' '$dir/answer-example.txt' | tee '$dir/boxes.jsonl'"
fi
say "The results:"
run "ls -l '$dir' '$dir/crops'"
