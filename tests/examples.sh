#!/usr/bin/env bash
# tests/examples.sh: every example script runs on the sample documents with the tiny model,
# prints what it does, and makes what it says; the GNU parallel recipe of the README works
# with ':' (this machine) as the only host.
source "$(dirname "$0")/lib.sh"
unset MAKEFLAGS MFLAGS MAKELEVEL
export QVL_BIN=$BIN MAX_TOKENS=16 OUT=$TMP/out
E=examples

check_grep ocr_prints '^\$ qvl-resize --dpi auto .*letter.png.* \| qvl-vit \| qvl-merge \| qvl-decode' $E/ocr.sh
check_grep ocr_says_noise 'random weights' $E/ocr.sh
check ocr_other_page $E/ocr.sh $E/docs/receipt.jpg

check_grep video_record '"kind":"video".*"grid_thw":\[2,12,16\].*"fps":2' $E/video.sh
check video_frames $E/video.sh $E/video/f0.png $E/video/f1.png

check grounding $E/grounding.sh
g=$OUT/grounding
check grounding_answer grep -q '"finish_reason"' $g/answer.json
check_grep grounding_box '"label": "TOTAL 26.73", "bbox": \[23\.51, 452\.38, 360\.49, 489\.58\]' cat $g/boxes.jsonl
check grounding_drawn test -s $g/boxes.png
check grounding_crop test -s $g/crops/001.png
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
	# the crop is the TOTAL line of the receipt: as wide as the box, as tall
	check grounding_crop_size /usr/bin/python3 -c "
import sys
from PIL import Image
w, h = Image.open('$g/crops/001.png').size
sys.exit(not (330 <= w <= 345 and 34 <= h <= 40))"
fi

check_grep inspect_threads '^image_embeds[[:space:]]+max_abs .*ok$' $E/inspect.sh
check_grep inspect_golden '^block\.0[[:space:]]+max_abs .*ok$' $E/inspect.sh
check inspect_npy test -s $OUT/inspect/npy/image_embeds.npy

check_grep demo 'Nothing to be done' $E/demo.sh
check demo_made test -s $OUT/ocr/out/report.md -a -s $OUT/ocr/out/letter.md -a -s $OUT/ocr/out/receipt.log
check_grep demo_noise 'That text is noise' $E/demo.sh

# The README's recipe for many hosts, with this machine as the only one: pages rendered
# here, made through parallel (which runs `make -f ocr.mk PAGE.json PAGE.log` on a host),
# joined here; then nothing is left to do.
if command -v parallel >/dev/null; then
	D=$TMP/par
	mkdir -p $D
	cp $E/docs/report.pdf $E/docs/receipt.jpg $E/ocr.mk $D
	S=(QVL_BIN=$BIN QVL_MODEL=$TINY MAX_TOKENS=16 'PROMPT=Read it all; "all" of it.')
	check par_pages make -s -C $D -f ocr.mk "${S[@]}" pages
	check_grep par_todo '^out/receipt/p001$' make -s -C $D -f ocr.mk "${S[@]}" todo
	check par_run sh -c 'cd "$1" && shift && make -s -f ocr.mk "$@" todo |
		parallel -q --sshlogin : --workdir . --basefile ocr.mk --transferfile {}.png \
		--return {}.json --return {}.log --cleanup make -s -f ocr.mk "$@" {}.json {}.log' \
		sh $D "${S[@]}"
	check par_results test -s $D/out/report/p002.json -a -s $D/out/receipt/p001.log
	check_grep par_nothing_todo '^$' sh -c "make -s -C $D -f ocr.mk $(printf '%q ' "${S[@]}") todo; echo"
	make -C $D -f ocr.mk "${S[@]}" > $TMP/join.out 2>&1
	check_grep par_join 'JOIN    out/report.md' cat $TMP/join.out
	check_fails par_only_joins 1 grep -qE 'VISION|DECODE' $TMP/join.out
	check par_done make -q -C $D -f ocr.mk "${S[@]}"
else
	echo "GNU parallel is not installed: the --sshlogin recipe is not tested"
fi

# Manual pages: every program has one with EXAMPLES and SEE ALSO, and qvl(7) names it.
for c in cmd/qvl-*.c; do
	n=$(basename "$c" .c)
	m=man/man1/$n.1
	check "man_$n" test -f "$m"
	check_grep "man_${n}_examples" '^\.(Sh|SH) "?EXAMPLES' cat "$m"
	check_grep "man_${n}_see_also" '^\.(Sh|SH) "?SEE ALSO' cat "$m"
	check_grep "qvl7_names_$n" "^\\.It Xr $n 1\$" cat man/man7/qvl.7
done
if command -v groff >/dev/null; then
	check_fails qvl7_lint 1 grep . <(groff -mandoc -ww -z man/man7/qvl.7 2>&1)
fi

finish
