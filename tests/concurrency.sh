#!/bin/bash
# concurrency.sh: two batch OCR runs (examples/ocr.mk, make -j4 each) on the same out/ at
# once end with the same files as one run alone, and nothing half-written; several qvl-decode
# processes share one mmapped model (its pages counted once: PSS well under RSS) and each
# writes exactly what it writes alone.  With -v, prints the RSS/PSS figures.
source "$(dirname "$0")/lib.sh"
unset MAKEFLAGS MFLAGS MAKELEVEL
VERBOSE=${1:-}

# --- two makes on one cache directory -------------------------------------------------------
MK=$PWD/examples/ocr.mk
# Each recipe's temporary file is the make process's own ($@.tmp$(MAKEPID)): with one fixed
# name, two makes building the same page would write the same file, and one would rename away
# (or .DELETE_ON_ERROR delete) what the other is writing.
check "ocr.mk names its temporary files per make process" grep -q 'MAKEPID' "$MK"
for d in alone shared; do
	mkdir -p "$TMP/$d"
	cp examples/docs/report.pdf examples/docs/letter.png examples/docs/receipt.jpg "$TMP/$d"
done
ocr() { make --no-print-directory -s -f "$MK" -C "$1" QVL_BIN="$BIN" QVL_MODEL="$TINY" MAX_TOKENS=12 THREADS=1 -j4; }
check "ocr alone" ocr "$TMP/alone"
ocr "$TMP/shared" >"$TMP/make1.log" 2>&1 &
m1=$!
ocr "$TMP/shared" >"$TMP/make2.log" 2>&1 &
m2=$!
wait $m1; rc1=$?
wait $m2; rc2=$?
check "two makes at once: both succeed" test $rc1 -eq 0 -a $rc2 -eq 0
[[ $rc1 -eq 0 && $rc2 -eq 0 ]] || tail -n 5 "$TMP/make1.log" "$TMP/make2.log"
check "two makes at once: nothing half-written left" bash -c "! find $TMP/shared/out -name '*.tmp*' | grep ."
# every page's image, embeddings and text as one run alone makes them
same=0 differ=
for f in $(cd "$TMP/alone" && find out -type f \( -name '*.png' -o -name '*.emb' -o -name '*.md' \) | sort); do
	if cmp -s "$TMP/alone/$f" "$TMP/shared/$f"; then same=$((same + 1)); else differ+=" $f"; fi
done
check "two makes at once: every file as made alone ($same compared)" test -z "$differ" -a $same -ge 10
[[ -n $differ ]] && echo "differ:$differ"
check "and a third run has nothing to do" bash -c "make -q -f $MK -C $TMP/shared QVL_BIN=$BIN QVL_MODEL=$TINY MAX_TOKENS=12 THREADS=1"

# --- qvl-decode processes sharing one mmapped model ------------------------------------------
$BIN/qvl-resize "$DATA/golden/tiny/img_main_main.png" | $BIN/qvl-vit | $BIN/qvl-merge >"$TMP/emb"
N=3
for i in $(seq $N); do
	$BIN/qvl-decode -p hi --max-tokens 60 --ignore-eos --max-repeat 0 -t 1 "$TMP/emb" >"$TMP/d$i.txt" &
done
wait
ok=1
for i in $(seq 2 $N); do cmp -s "$TMP/d1.txt" "$TMP/d$i.txt" || ok=0; done
check "$N decodes at once write the same answer" test $ok -eq 1 -a -s "$TMP/d1.txt"
$BIN/qvl-decode -p hi --max-tokens 60 --ignore-eos --max-repeat 0 -t 1 "$TMP/emb" >"$TMP/d0.txt"
check "and the same as one alone" cmp "$TMP/d0.txt" "$TMP/d1.txt"

# Held mid-answer (stdout a fifo nobody reads), each process's share of the model mapping.
mkfifo "$TMP/stall"
sleep 20 <"$TMP/stall" &
sleeper=$!
exec 3>"$TMP/stall"
pids=()
for i in $(seq $N); do
	$BIN/qvl-decode -p hi --max-tokens 100000 --ignore-eos --max-repeat 0 -t 1 "$TMP/emb" >&3 &
	pids+=($!)
done
exec 3>&-
# the model's mapping: Rss and Pss (kB) summed over its entries in /proc/PID/smaps
model_mem() {
	awk -v f="$TINY/model.safetensors" '
		/^[0-9a-f]+-[0-9a-f]+ / { inmodel = ($NF == f) }
		inmodel && /^Rss:/ { rss += $2 } inmodel && /^Pss:/ { pss += $2 }
		END { printf "%d %d\n", rss, pss }' "/proc/$1/smaps"
}
# all_shared: every process maps the model and its share is about 1/N of the pages it maps
all_shared() {
	local p mrss mpss rss pss
	for p in "${pids[@]}"; do
		read -r mrss mpss < <(model_mem "$p")
		read -r rss pss < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' \
			"/proc/$p/smaps_rollup")
		[[ -n $VERBOSE ]] && echo "qvl-decode $p: RSS $rss kB, PSS $pss kB; model mapping RSS $mrss kB, PSS $mpss kB"
		(( mrss > 0 && mpss * 10 < mrss * 7 )) || return 1
	done
}
# a slow host may take a while to start them all: ask for 10 s at most
shared_ok=0
for ((try = 0; try < 50; try++)); do
	sleep 0.2
	all_shared && { shared_ok=1; break; }
done
check "the mmapped model's pages are shared ($N processes: PSS < 0.7 RSS)" test $shared_ok -eq 1
kill "${pids[@]}" $sleeper 2>/dev/null
wait 2>/dev/null

finish
