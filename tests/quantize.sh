#!/usr/bin/env bash
# tests/quantize.sh: qvl-quantize writes model directories that load, refuses bad usage.
source "$(dirname "$0")/lib.sh"

Q=$BIN/qvl-quantize
check "q8 tiny" "$Q" -q -m "$TINY" --type q8 -o "$TMP/q8"
check "q8 has the config" cmp "$TINY/config.json" "$TMP/q8/config.json"
check "q8 has the tokenizer" cmp "$TINY/tokenizer.json" "$TMP/q8/tokenizer.json"
check_grep "q8 tensors" 'up_proj\.weight\.q8_scale' "$BIN/qvl-dump" "$TMP/q8/model.safetensors"
check "q4 untied" "$Q" -q -m "$UNTIED" --type q4 -o "$TMP/q4"
check_grep "q4 lm_head" 'lm_head\.weight\.q4_min' "$BIN/qvl-dump" "$TMP/q4/model.safetensors"
check "q4 as f32" "$Q" -q -m "$TINY" --type q4 --as-f32 -o "$TMP/q4f"
check "no temp files left" test -z "$(ls "$TMP"/q8/*.tmp.* "$TMP"/q4/*.tmp.* 2>/dev/null)"
# Once the language model loads its matrices through qvl_weights_matrix (lib/quant.h).
if [[ -x $BIN/qvl-decode ]] && grep -q qvl_weights_matrix lib/llm.c; then
	check "decode with q8 weights" "$BIN/qvl-decode" -m "$TMP/q8" -p 'Hi' --max-tokens 3
fi
check_fails "no type" 2 "$Q" -m "$TINY" -o "$TMP/x"
check_fails "bad type" 2 "$Q" -m "$TINY" --type q3 -o "$TMP/x"
check_fails "no output" 2 "$Q" -m "$TINY" --type q8
check_fails "extra argument" 2 "$Q" -m "$TINY" --type q8 -o "$TMP/x" junk
check_fails "missing model" 1 "$Q" -m "$TMP/none" --type q8 -o "$TMP/x"
check_fails "over its input" 1 "$Q" -m "$TINY" --type q8 -o "$TINY"
check_grep "help" 'usage: qvl-quantize' "$Q" -h
finish
