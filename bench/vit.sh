#!/bin/bash
# bench/vit.sh [MODEL]: times qvl-vit | qvl-merge (2 threads) on a 448x448 image, an 812x812
# image and an A4 page at 72 DPI (595x842 -> 588x840), with synthetic pixel values of the
# grids smart_resize gives, on a model with the real Qwen2.5-VL-3B vision config (random
# weights: ../shared/tools/mkrandom --preset 3b; never commit it).  Prints seconds, GFLOP/s
# (every matrix product and attention product), OpenBLAS sgemm peak measured in the same run,
# their ratio and peak RSS.  The machine is shared: figures are noisy; compare ratios.
set -eu
cd "$(dirname "$0")/.."
M=${1:-${QVL_MODEL:-/work/models/3b}}
THREADS=${THREADS:-2}
make -s bin/qvl-vit bin/qvl-merge build/bench/vit
T=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

peak=$(build/bench/vit sgemm 2048 "$THREADS")
printf '%-10s %7s %6s %9s %9s %8s %6s %9s %9s\n' case patches TFLOP vit_s merge_s total_s GF/s of_peak peakRSS_MB
# name, grid (t, h, w) after smart_resize
for c in "448x448 1 32 32" "812x812 1 58 58" "A4@72dpi 1 60 42"; do
	set -- $c
	build/bench/vit pixels "$2" "$3" "$4" > "$T/px"
	read -r fv fm < <(build/bench/vit flops "$M" "$2" "$3" "$4")
	/usr/bin/time -f '%e %M' -o "$T/t1" bin/qvl-vit -m "$M" --threads "$THREADS" "$T/px" > "$T/vit"
	/usr/bin/time -f '%e %M' -o "$T/t2" bin/qvl-merge -m "$M" --threads "$THREADS" "$T/vit" > /dev/null
	# The peak is measured again after each case and the best figure kept, so a busy
	# moment during one measurement does not flatter the ratio.
	p2=$(build/bench/vit sgemm 2048 "$THREADS")
	peak=$(awk -v a="$peak" -v b="$p2" 'BEGIN { print (a > b ? a : b) }')
	read -r s1 r1 < "$T/t1"
	read -r s2 r2 < "$T/t2"
	awk -v n="$1" -v p=$(($2 * $3 * $4)) -v fv="$fv" -v fm="$fm" -v s1="$s1" -v s2="$s2" \
	    -v r1="$r1" -v r2="$r2" -v peak="$peak" 'BEGIN {
		gf = (fv + fm) / (s1 + s2) / 1e9
		printf "%-10s %7d %6.3f %9.2f %9.2f %8.2f %6.1f %8.0f%% %9.0f\n", n, p,
		    (fv + fm) / 1e12, s1, s2, s1 + s2, gf, 100 * gf / peak, (r1 > r2 ? r1 : r2) / 1024
	}'
done
echo "OpenBLAS sgemm 2048^3, $THREADS threads, best of 4 (best over the run): $peak GFLOP/s"
echo "peak RSS is the larger of the two programs' (the tower maps about 1.3 GB of BF16 weights)"
