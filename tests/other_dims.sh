#!/bin/bash
# other_dims.sh: qvl against the numpy reference (tests/ref/qwen25vl_ref.py, itself checked
# against every golden case here first) on a random model whose dimensions the goldens do not
# cover: LLM head_dim 128 with mrope_section [16,24,24], vision head_dim 80, out_hidden not
# the vision width, intermediate sizes not multiples of 32.  tests/long/other_dims.sh runs
# the 3B- and 7B-shaped configs (GQA 8:1 and 7:1, tied and untied) too.  The mixed prompt
# also runs in --precision bf16, against the reference at 2e-2.
. "$(dirname "$0")/lib.sh"
. tests/ref/other_dims.sh
check "reference = goldens (tiny)" $PY $REF/qwen25vl_ref.py golden "$TINY" "$DATA"/golden/tiny/*.safetensors
check "reference = goldens (untied)" $PY $REF/qwen25vl_ref.py golden "$UNTIED" "$DATA"/golden/untied/*.safetensors
OD_KEEP=1 other_dims hd128_tied
od_case_bf16 "$TMP/hd128_tied" hd128_tied.long "Describe these." "$TMP/hd128_tied.long.px"
od_sensitivity hd128_tied
finish
