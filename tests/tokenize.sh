#!/bin/bash
# tests/tokenize.sh: qvl-tokenize in its four modes, against ids made by the real Hugging Face
# tokenizers library (tests/data/tokenizer/*.jsonl), and its errors.
source "$(dirname "$0")/lib.sh"
T=$BIN/qvl-tokenize

expect() { # expect WANT CMD...: CMD's stdout is exactly WANT
	local want=$1; shift
	[[ "$("$@")" == "$want" ]]
}

check encode-plain expect $'9707\n11\n1879\n0' sh -c "printf 'Hello, world!' | $T"
check encode-empty expect '' sh -c "printf '' | $T"
check decode-plain expect 'Hello, world!' sh -c "printf '9707 11\n1879\t0' | $T --decode"
check round-trip expect $'naïve café 東京 😀\n\tx' sh -c \
	"printf 'naïve café 東京 😀\n\tx' | $T | $T --decode"
# Special tokens in the text, the whitespace rules and NFC per segment (README examples).
check encode-jsonl expect $'[64,220,293]\n[68,151645,53839]\n[6,144815,83]\n[]\n[13708,766,29]' \
	sh -c "printf '%s\n' '\"a  b\"' '\"e<|im_end|>\\u0301\"' '\"'\\''\\u017ft\"' '\"\"' \
	'\"<think>\"' | $T --jsonl"
check decode-jsonl expect $'"\\ufffd<|im_end|>\\ufffd\\ufffd"\n"<|im_end|>I"' \
	sh -c "printf '[160, 151645, 116, 255]\n[151645,40]\n' | $T --jsonl --decode | \
	sed 's/\xef\xbf\xbd/\\\\ufffd/g'"
check decode-skip-special expect $'"中"\n"I"' \
	sh -c "printf '[160, 151645, 116, 255]\n[151645,40]\n' | $T --jsonl --decode --skip-special"
check unknown-ids-dropped expect 'I' sh -c "echo '151700 40' | $T --decode"
check model-from-env expect '40' sh -c "printf I | QVL_MODEL=$TINY $T"
check model-option expect '40' sh -c "printf I | env -u QVL_MODEL $T -m $TINY"
# 300 golden lines in one process: the ids must be those of the reference.
# 300 golden lines in one process: the ids must be those of the reference.
head -n 300 "$DATA/tokenizer/golden.jsonl" >"$TMP/golden"
sed -E 's/^\{"text":("([^"\\]|\\.)*"),"ids":(\[[^]]*\]).*/\1/' "$TMP/golden" >"$TMP/texts"
sed -E 's/^\{"text":("([^"\\]|\\.)*"),"ids":(\[[^]]*\]).*/\3/' "$TMP/golden" >"$TMP/want"
check golden-jsonl sh -c "$T --jsonl <$TMP/texts >$TMP/got && cmp $TMP/want $TMP/got &&
	[ \$(grep -c '^\"' $TMP/texts) = 300 ] && [ \$(grep -c '^\[' $TMP/got) = 300 ]"

check_grep invalid-utf8 'invalid UTF-8 at byte offset 2' sh -c "printf 'ab\303(' | $T"
check_fails invalid-utf8-status 1 sh -c "printf 'ab\303(' | $T"
check_fails bad-json 1 sh -c "echo '{' | $T --jsonl"
check_grep bad-json-line '<stdin>:2:' sh -c "printf '\"a\"\n[1]\n' | $T --jsonl"
check_fails bad-id 1 sh -c "echo '1 x' | $T --decode"
check_fails bad-id-jsonl 1 sh -c "echo '[1, -2]' | $T --jsonl --decode"
check_fails no-model 1 sh -c "$T -m /nonexistent </dev/null"
check_fails bad-option 2 $T --bogus
check_fails extra-arg 2 $T file
check_fails skip-without-decode 2 $T --skip-special
check help $T -h
# Unicode versions: NFC with the reference's Unicode 9.0 data, letters and numbers of 16.0,
# every line of the goldens made for them; 160 kB of marks in linear time (was 39 s).
sed -E 's/^\{"text":("([^"\\]|\\.)*"),"ids":(\[[^]]*\]).*/\1/' \
	"$DATA/tokenizer/unicode_golden.jsonl" >"$TMP/utexts"
sed -E 's/^\{"text":("([^"\\]|\\.)*"),"ids":(\[[^]]*\]).*/\3/' \
	"$DATA/tokenizer/unicode_golden.jsonl" >"$TMP/uwant"
check unicode-goldens sh -c "$T --jsonl <$TMP/utexts >$TMP/ugot && cmp $TMP/uwant $TMP/ugot"
check marks-linear sh -c "{ printf e; yes \$(printf '\\314\\243\\314\\201') | head -n 40000 |
	tr -d '\\n'; } | timeout 5 $T | [ \$(wc -l) -gt 1000 ]"
finish
