#!/bin/bash
# other_dims.sh (make check-long): qvl against the numpy reference on random models with the
# real checkpoints' ratios scaled down (tests/ref/configs): head_dim 128 and 64, GQA 2:1, 8:1
# (3B) and 7:1 (7B), tied and untied embeddings, vision head_dim 80 with 2 and 3 heads.
. "$(dirname "$0")/../lib.sh"
. tests/ref/other_dims.sh
check "reference = goldens (tiny)" $PY $REF/qwen25vl_ref.py golden "$TINY" "$DATA"/golden/tiny/*.safetensors
check "reference = goldens (untied)" $PY $REF/qwen25vl_ref.py golden "$UNTIED" "$DATA"/golden/untied/*.safetensors
other_dims hd128_tied
OD_KEEP=1 other_dims hd64_gqa8_tied
# grids far from the goldens' (od_shapes) on both test models and a 3B-shaped one
od_shapes "$TINY" tiny
od_shapes "$UNTIED" untied
od_shapes "$TMP/hd64_gqa8_tied" hd64_gqa8_tied
rm -rf "$TMP/hd64_gqa8_tied"
# 7 query heads over 3 threads: uneven splits of heads and rows
OD_THREADS=3 other_dims hd64_gqa7_untied
# the same on every lower kernel level of this CPU (QVL_CPU caps it): decoding's row kernels
# are per level, and 448 / 1190 wide rows are not multiples of their blocks
for level in generic avx2 avx512; do
	QVL_CPU=$level OD_THREADS=3 other_dims hd64_gqa7_untied
done
finish
