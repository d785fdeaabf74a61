#!/bin/bash
# bench/vit.sh [MODEL]: qvl-vit | qvl-merge (2 threads) on a 448x448 image, an 812x812 image
# and an A4 page at 72 DPI (595x842 -> 588x840), in --precision f32 and bf16, with synthetic
# pixel values of the grids smart_resize gives, on a model with the real Qwen2.5-VL-3B vision
# config (random weights: ../shared/tools/mkrandom --preset 3b; never commit it).
# Prints markdown table rows (stage | figure | limit | ratio | llama.cpp): seconds and
# GFLOP/s (every matrix and attention product), against the time the same FLOPs take at the
# OpenBLAS sgemm peak measured in the same run (best of the measurements around the cases,
# so a busy moment does not flatter the ratio), and peak RSS.  PRECISIONS="f32" to skip bf16.
# With MODEL-q8 (or Q8=DIR) the A4 page also runs on the q8 model in bf16.
set -eu
cd "$(dirname "$0")/.."
M=${1:-${QVL_BENCH_MODEL:-bench/models/3b}}
THREADS=${THREADS:-2}
make -s bin/qvl-vit bin/qvl-merge build/bench/vit
T=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

peak=$(build/bench/vit sgemm 2048 "$THREADS")
rows=()
# name, grid (t, h, w) after smart_resize, llama.cpp seconds (BENCHMARKS.md)
for c in "448x448 1 32 32 10.0" "812x812 1 58 58 35.8" "A4@72dpi 1 60 42 26.2"; do
	set -- $c
	build/bench/vit pixels "$2" "$3" "$4" > "$T/px"
	read -r fv fm < <(build/bench/vit flops "$M" "$2" "$3" "$4")
	runs=()
	for p in ${PRECISIONS:-f32 bf16}; do
		runs+=("$M:$p:$p")
	done
	# The page with the q8 model in bf16 precision (its matrices widened to BF16 tiles).
	[[ $1 = A4@72dpi && -f ${Q8:-$M-q8}/config.json && ${PRECISIONS:-bf16} = *bf16* ]] &&
	    runs+=("${Q8:-$M-q8}:bf16:bf16,q8")
	for run in "${runs[@]}"; do
		IFS=: read -r model p label <<<"$run"
		/usr/bin/time -f '%e %M' -o "$T/t1" bin/qvl-vit -m "$model" --threads "$THREADS" \
		    --precision "$p" "$T/px" > "$T/vit"
		/usr/bin/time -f '%e %M' -o "$T/t2" bin/qvl-merge -m "$model" --threads "$THREADS" \
		    --precision "$p" "$T/vit" > /dev/null
		read -r s1 r1 < "$T/t1"
		read -r s2 r2 < "$T/t2"
		rows+=("$1 $(($2 * $3 * $4)) $label $fv $fm $s1 $s2 $r1 $r2 $5")
	done
	p2=$(build/bench/vit sgemm 2048 "$THREADS")
	peak=$(awk -v a="$peak" -v b="$p2" 'BEGIN { print (a > b ? a : b) }')
done
for r in "${rows[@]}"; do
	set -- $r
	awk -v n="$1" -v np="$2" -v p="$3" -v fv="$4" -v fm="$5" -v s1="$6" -v s2="$7" \
	    -v r1="$8" -v r2="$9" -v ll="${10}" -v peak="$peak" -v th="$THREADS" 'BEGIN {
		f = fv + fm; s = s1 + s2; bound = f / (peak * 1e9)
		sub(/,q8$/, " (q8 weights)", p)
		printf "| vision %s (%d patches), %s | %.1f s (vit %.1f + merge %.1f), %.0f GFLOP/s, RSS %.2f GB | %.1f s at sgemm peak %.0f GFLOP/s | %.2f | %s s |\n",
		    n, np, p, s, s1, s2, f / s / 1e9, (r1 > r2 ? r1 : r2) / 1e6, bound, peak,
		    bound / s, ll
	}'
done
