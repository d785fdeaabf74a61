#!/usr/bin/env bash
# tests/ocr.sh: examples/ocr.mk on the sample documents with the tiny model: every target is
# made, a second run does nothing, removing one page's .md remakes only it, a new file is the
# only new work, a new prompt skips the vision tower, a repeating page is retried and flagged,
# and an interrupted run leaves no half-written file and finishes as if never stopped.
source "$(dirname "$0")/lib.sh"
# The outer make's flags and jobserver are not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL

MK=$PWD/examples/ocr.mk
D=$TMP/docs
mkdir -p "$D"
cp examples/docs/report.pdf examples/docs/letter.png examples/docs/receipt.jpg "$D"

ocr() { make --no-print-directory -f "$MK" -C "$D" QVL_BIN="$BIN" QVL_MODEL="$TINY" MAX_TOKENS=16 "$@"; }
# what every file of out/ looks like now: name and modification time
snapshot() { (cd "$D" && find out -type f -printf '%p %T@\n' | sort); }
# the files that changed (or appeared, or went) between two snapshots
changed() { diff "$1" "$2" | sed -n 's/^> \([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' '; }

pages="letter/p001 receipt/p001 report/p001 report/p002"
check first_run ocr -j2
missing=
for p in $pages; do
	for s in .png .png.emb .json .log .md; do
		[[ -s $D/out/$p$s ]] || missing+=" $p$s"
	done
done
for n in letter receipt report; do
	[[ -s $D/out/$n.md && -s $D/out/$n.log ]] || missing+=" $n.md/.log"
done
check every_target test -z "$missing"
[[ -n $missing ]] && echo "missing:$missing"
check no_tmp_left sh -c "! find '$D/out' -name '*.tmp*' | grep ."
check_grep two_pages '<!-- page 2 -->' cat "$D/out/report.md"
check_grep page_log '^p002: [0-9]+ prompt tokens, 16 generated, finish (length|stop)$' cat "$D/out/report.log"
check_grep emb_is_stream '^0[[:space:]]+image_embeds[[:space:]]+F32[[:space:]]+\[[0-9]+, [0-9]+\]' "$BIN/qvl-dump" "$D/out/report/p001.png.emb"
check_grep json_result '"finish_reason":"(length|stop)"' cat "$D/out/report/p002.json"
# the page's .md is the result's "text" exactly (python's json as the referee)
if /usr/bin/python3 -c '' 2>/dev/null; then
	check md_is_text /usr/bin/python3 -c "
import json, sys
t = json.load(open('$D/out/receipt/p001.json'))['text']
t = t if t == '' or t.endswith('\n') else t + '\n'
sys.exit(open('$D/out/receipt/p001.md', encoding='utf-8', newline='').read() != t)"
fi
# --dpi auto: the 200-dpi letter became about 72 dpi (1165 x 1654 -> 420 x 588)
check_grep letter_dpi_auto '"orig_size":\[420,588\]' "$BIN/qvl-dump" "$D/out/letter/p001.png.emb"
# PDF pages at 72 dpi: US letter, 612 x 792
check_grep pdf_72dpi '"orig_size":\[612,792\]' "$BIN/qvl-dump" "$D/out/report/p002.png.emb"

# a second run does nothing
check question ocr -q
check_grep nothing_to_do 'Nothing to be done' ocr

# removing one page's .md remakes only it (and the document it joins into)
snapshot > "$TMP/before"
rm "$D/out/report/p002.md"
check remake_one ocr
snapshot > "$TMP/after"
got=$(changed "$TMP/before" "$TMP/after")
check only_that_page test "$got" = "out/report.md out/report/p002.md "
[[ $got != "out/report.md out/report/p002.md " ]] && echo "changed: $got"

# a new document is the only new work
cp examples/video/f1.png "$D/ball.png"
snapshot > "$TMP/before"
check new_file ocr -j2
snapshot > "$TMP/after"
got=$(changed "$TMP/before" "$TMP/after")
check only_new_file sh -c "test -z \"\$(echo '$got' | tr ' ' '\n' | grep . | grep -v '^out/ball')\""
check new_file_done test -s "$D/out/ball.md"

# a new prompt re-runs the decoder on every page, never the vision tower
snapshot > "$TMP/before"
check_grep new_prompt 'DECODE  out/report/p002.json' ocr -j2 PROMPT='Describe the image; say "why".'
snapshot > "$TMP/after"
got=$(changed "$TMP/before" "$TMP/after")
check prompt_keeps_emb sh -c "! echo '$got' | grep -q 'emb'"
check prompt_redone sh -c "test \$(echo '$got' | tr ' ' '\n' | grep -c 'json\$') = 5"
check_grep prompt_stamp 'PROMPT=Describe the image; say "why"\.' cat "$D/out/.decode"
check prompt_question ocr -q PROMPT='Describe the image; say "why".'

# embeddings are a cache: deleting them costs nothing until a page's text must be redone
rm "$D"/out/*/*.emb
check emb_gone_nothing_to_do ocr -q PROMPT='Describe the image; say "why".'

# a page whose decoding repeats is read again at RETRY_DPI and flagged in the document's log
# (the tiny model's greedy answer about the receipt, run on with --ignore-eos, settles into one
# repeated token: the guard trips at --max-repeat 2)
rm -rf "$D/out"
check_grep retry 'RETRY   out/receipt/p001.json at 48 dpi' \
	ocr DOCS=receipt.jpg MAX_TOKENS=200 DECODE_FLAGS='--max-repeat 2 --ignore-eos'
check_grep retry_flagged '^p001: REPETITION at 72 dpi, read again at 48 dpi: [0-9]+ prompt tokens' \
	cat "$D/out/receipt.log"
check retry_done test -s "$D/out/receipt.md"
# and is then as done as any other page
check retry_question ocr -q DOCS=receipt.jpg MAX_TOKENS=200 DECODE_FLAGS='--max-repeat 2 --ignore-eos'

# an interrupted run (killed with its recipes, as ^C does) leaves only whole files and
# finishes, when run again, exactly as an uninterrupted run
rm -rf "$D/out"
ocr -j2 >/dev/null 2>&1
cp -r "$D/out" "$TMP/whole"
rm -rf "$D/out"
setsid bash -c "make --no-print-directory -f '$MK' -C '$D' QVL_BIN='$BIN' QVL_MODEL='$TINY' \
	MAX_TOKENS=16 -j2 >/dev/null 2>&1" &
pid=$!
sleep 1.2
kill -TERM -- -$pid 2>/dev/null
wait $pid
[[ -n ${OCR_DEBUG:-} ]] && find "$D/out" -type f | sort
bad=
for f in "$D"/out/*/*.emb; do
	[[ -e $f ]] && ! "$BIN/qvl-dump" "$f" >/dev/null 2>&1 && bad+=" $f"
done
for f in "$D"/out/*/*.json; do
	[[ -e $f ]] && [[ $(tail -c 2 "$f") != "}" ]] && bad+=" $f"
done
check interrupted_whole test -z "$bad"
[[ -n $bad ]] && echo "half-written:$bad"
check resumed ocr -j2
for n in letter receipt report; do
	check "resumed_$n" cmp "$D/out/$n.md" "$TMP/whole/$n.md"
done

# bad setups are refused with a message
check_grep no_model 'set QVL_MODEL' env -u QVL_MODEL make --no-print-directory -f "$MK" -C "$D"
cp "$D/letter.png" "$D/report.png"
check_grep same_name 'share a name.*report' ocr -q
rm "$D/report.png"
printf 'not a pdf\n' > "$D/broken.pdf"
check_grep bad_pdf 'broken.pdf: pdfinfo cannot read it.*; skipped' ocr -n
rm "$D/broken.pdf"

finish
