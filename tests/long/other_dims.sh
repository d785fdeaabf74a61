#!/bin/bash
# other_dims.sh (make check-long): qvl against the numpy reference on random models with the
# real checkpoints' ratios scaled down (tests/ref/configs): head_dim 128 and 64, GQA 2:1, 8:1
# (3B) and 7:1 (7B), tied and untied embeddings, vision head_dim 80 with 2 and 3 heads.
. "$(dirname "$0")/../lib.sh"
. tests/ref/other_dims.sh
check "reference = goldens (tiny)" $PY $REF/qwen25vl_ref.py golden "$TINY" "$DATA"/golden/tiny/*.safetensors
check "reference = goldens (untied)" $PY $REF/qwen25vl_ref.py golden "$UNTIED" "$DATA"/golden/untied/*.safetensors
for c in hd128_tied hd64_gqa8_tied hd64_gqa7_untied; do
	other_dims $c
done
finish
