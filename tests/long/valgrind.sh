#!/bin/bash
# valgrind.sh (make check-valgrind; also run by make check-long): the whole pipeline on the
# tiny model under valgrind memcheck (resize -> vit -> merge -> decode, then boxes, dump and
# tokenize), with zero errors and zero leaks.
#
# valgrind cannot run AVX-512 code, so the programs are rebuilt here for x86-64-v3 (AVX2;
# the kernels still choose at run time, and valgrind's CPU has no AVX-512) without oneDNN,
# at -O1 for readable reports.  tests/long/valgrind.supp suppresses only what belongs to
# OpenBLAS and glibc's thread start-up (its worker threads' stacks and TLS, allocated once at
# load time and never freed by design); nothing of qvl's is suppressed.
source "$(dirname "$0")/../lib.sh"
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed (apt-get install valgrind)"; exit 1; }

VB=$TMP/bin
mkdir -p "$VB" "$TMP/obj"
CFLAGS_VG="-std=c11 -D_GNU_SOURCE -march=x86-64-v3 -O1 -g -pthread $(pkg-config --cflags openblas libpng libjpeg jansson libutf8proc)"
LIBS_VG="$(pkg-config --libs openblas libpng libjpeg jansson libutf8proc) -lm -pthread"
build_ok=1
objs=()
# the library and the programs' shared code (cmd/ but the programs), as one archive from
# which each program takes what it uses, as the Makefile links them
for f in lib/*.c cmd/*.c; do
	[[ $f = cmd/qvl-* ]] && continue
	o=$TMP/obj/$(echo "$f" | tr / _).o
	cc $CFLAGS_VG -c "$f" -o "$o" || build_ok=0
	objs+=("$o")
done
ar rcs "$TMP/libvg.a" "${objs[@]}" || build_ok=0
for f in cmd/qvl-*.c; do
	p=$(basename "$f" .c)
	cc $CFLAGS_VG -o "$VB/$p" "$f" "$TMP/libvg.a" $LIBS_VG || build_ok=0
done
check "build for valgrind (x86-64-v3, no oneDNN)" test $build_ok -eq 1

# one thread for OpenBLAS and qvl's pool keeps the run short and the report deterministic
export OPENBLAS_NUM_THREADS=1
# libjpeg-turbo's AVX2 upsampling reads whole vectors past the initialised part of its own
# row buffers (harmless; memcheck cannot see that the lanes are discarded): its plain-C
# code paths give the same pixels and a clean report
export JSIMD_FORCENONE=1
VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible"
VG+=" --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
VG+=" --suppressions=$PWD/tests/long/valgrind.supp --log-file=$TMP/vg.%p.log"
# vg NAME CMD...: CMD under memcheck exits 0 with an empty report
vg() {
	local name=$1; shift
	rm -f "$TMP"/vg.*.log
	"$@" >"$TMP/.out" 2>"$TMP/.err"
	local rc=$?
	if [[ $rc -eq 0 ]] && ! grep -qs . "$TMP"/vg.*.log; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL valgrind $name: exit $rc"; tail -n 5 "$TMP/.err"; cat "$TMP"/vg.*.log | head -60; fi
}
G=$DATA/golden/tiny
vg resize $VG $VB/qvl-resize -o "$TMP/pix" "$G/img_main_main.png" "$G/img_small_minpix_small.jpg"
# every pixel of an interlaced image under 8 bits written through libpng's pass merging
vg "resize, interlaced 2-bit PNG" $VG $VB/qvl-resize --info "$DATA/resize/p2i.png"
vg "resize --video" $VG $VB/qvl-resize --video -o "$TMP/vid" "$G"/video_clip_f*.png
vg vit bash -c "$VG $VB/qvl-vit -t 1 $TMP/pix >$TMP/vh"
vg merge bash -c "$VG $VB/qvl-merge -t 1 $TMP/vh >$TMP/emb"
vg decode bash -c "$VG $VB/qvl-decode -t 1 -p 'Describe the images.' --max-tokens 8 --logits $TMP/logits $TMP/emb >$TMP/answer"
vg "decode --json" bash -c "$VG $VB/qvl-decode -t 1 -p 'Find the dog. Output bbox_2d JSON.' --json --max-tokens 8 --each $TMP/emb >$TMP/answer.json"
vg "decode --each --batch 2" bash -c "$VG $VB/qvl-decode -t 1 -p 'Describe it.' --each --batch 2 --max-tokens 12 --stop ar --logits $TMP/blogits $TMP/emb >$TMP/banswer"
vg "decode sampling, untied" $VG $VB/qvl-decode -m "$UNTIED" -t 1 -p hi --text-only --max-tokens 8 --temperature 0.7 --top-p 0.9 --top-k 20 --seed 1
printf '{"bbox_2d": [10, 20, 200, 120], "label": "a"}\n{"point_2d": [30, 40]}\n' >"$TMP/boxes.txt"
vg boxes $VG $VB/qvl-boxes --image "$G/img_main_main.png" --draw "$TMP/drawn.png" --crop "$TMP" "$TMP/boxes.txt"
vg "boxes --json" $VG $VB/qvl-boxes "$TMP/answer.json"
vg dump $VG $VB/qvl-dump -s "$TMP/emb" "$TMP/pix"
vg "dump --compare" $VG $VB/qvl-dump --compare "$TMP/emb" --concat -q "$TMP/emb"
vg "dump --npy" $VG $VB/qvl-dump --npy "$TMP/npy" "$TMP/emb"
vg "dump safetensors" $VG $VB/qvl-dump "$TINY/model.safetensors"
vg tokenize bash -c "echo 'Hello, world! 你好 <|im_start|>' | $VG $VB/qvl-tokenize"
vg "tokenize --decode" bash -c "echo '9707 11 1879 0 151644' | $VG $VB/qvl-tokenize --decode"
# and the error paths free what they allocated too
vg "decode, cut stream" bash -c "head -c 1000 $TMP/emb | $VG $VB/qvl-decode -t 1 -p hi; [[ \$? -eq 1 ]]"
vg "vit, bad model" bash -c "$VG $VB/qvl-vit -m $TMP $TMP/pix; [[ \$? -eq 1 ]]"
# with the pool's workers started: they are joined at exit, their stacks not left behind
vg "vit, cut stream, 2 workers" bash -c "head -c 3000 $TMP/pix | $VG $VB/qvl-vit -t 2; [[ \$? -eq 1 ]]"
vg quantize $VG $VB/qvl-quantize -q -t 2 -m "$TINY" --type q4 -o "$TMP/vq4"
finish
