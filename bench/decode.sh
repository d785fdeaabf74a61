#!/bin/bash
# bench/decode.sh [MODEL]: qvl-decode on a model of the real 3B shapes (default
# bench/models/3b; random weights are fine), 2 threads.  Prints markdown table rows (stage |
# figure | limit | ratio | llama.cpp):
#   decode tokens/s over TOKENS (128) greedy tokens after a short text prompt, with the BF16
#     weights and, when they exist, the q8 and q4 models MODEL-q8 and MODEL-q4 (make them
#     with qvl-quantize -m MODEL --type q8 -o MODEL-q8; Q8=DIR / Q4=DIR to name others),
#     against the memory-bandwidth bound of the same run: weight bytes one token reads /
#     streaming-read GB/s (bench/membw, 2 threads);
#   prefill tokens/s of a 512-token text prompt in --precision f32 and bf16 (and bf16 with
#     the q8 and q4 models), against the rate the sgemm peak of the same run gives (2 FLOPs
#     per weight per token);
#   peak RSS of each decode run; each decode runs REPS (2) times and the faster counts,
#   against the fastest streaming read measured before, between and after them (this
#   machine's read rate moves by up to 1.6x with where the host runs its two cores: the
#   largest keeps the ratio honest);
#   decoding tokens/s of four conversations with the q8 model, --each --batch 4 against one at
#     a time;
#   with a 7B model (M7=DIR, default the 7b directory next to
#     MODEL; mkrandom --preset 7b makes one) also BF16 decode of 16 tokens and its RSS.
# The machines are shared: quote ratios.
set -eu
cd "$(dirname "$0")/.."
M=${1:-${QVL_BENCH_MODEL:-bench/models/3b}}
T=${THREADS:-2}
N=${TOKENS:-128}
make -s bin/qvl-decode bin/qvl-vit bin/qvl-merge build/bench/decode build/bench/membw \
    build/bench/vit >/dev/null
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# A 512-token prompt: the chat template's 21 tokens and 491 times " the".
prompt512=$(printf 'the%.0s ' $(seq 491) | sed 's/ $//')

run() { # model outfile args...
	local model=$1 out=$2
	shift 2
	if ! /usr/bin/time -v bin/qvl-decode -m "$model" -t "$T" --json --text-only "$@" \
	    >"$out" 2>"$out.time"; then
		echo "bench/decode.sh: qvl-decode failed:" >&2
		tail -n 30 "$out.time" >&2
		return 1
	fi
}

membw() {
	build/bench/membw -t "$T" -m 1024 -r 3 | sed 's/.*GB\/s=\([0-9.]*\).*/\1/'
}
max() {
	printf '%s\n' "$@" | sort -g | tail -n 1
}
bw=$(membw)
peak=$(build/bench/vit sgemm 2048 "$T")
params=$(build/bench/decode "$M" | awk '{ split($2, kv, "="); print kv[2] / 2 }')

for kind in bf16 q8 q4; do
	case $kind in
	bf16) dir=$M llama="3.53 tok/s (BF16)" ;;
	q8) dir=${Q8:-$M-q8} llama="5.20 tok/s (Q8_0)" ;;
	q4) dir=${Q4:-$M-q4} llama="9.24 tok/s (Q4_K_M)" ;;
	esac
	if [[ ! -f $dir/config.json ]]; then
		echo "| decode $kind | no model at $dir (qvl-quantize -m $M --type $kind -o $dir) | | | $llama |"
		continue
	fi
	bytes=$(build/bench/decode "$dir" | awk '{ split($2, kv, "="); print kv[2] }')
	bwk=$bw files=()
	for rep in $(seq "${REPS:-2}"); do
		run "$dir" "$TMP/$kind.$rep.json" -p 'Write a long story.' --max-tokens "$N" \
		    --max-repeat 0 --ignore-eos || continue 2
		bwk=$(max "$bwk" "$(membw)")
		files+=("$TMP/$kind.$rep.json")
	done
	/usr/bin/python3 - "$bytes" "$bwk" "$kind" "$llama" "${files[@]}" <<'PY'
import json, re, sys
nbytes, bw, kind, llama = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = [(json.load(open(f)), f) for f in sys.argv[5:]]
r, f = max(runs, key=lambda rf: rf[0]['timings']['decode_tokens_per_s'])
rss = max(int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', open(f + '.time').read()).group(1)) for _, f in runs)
dec = r['timings']['decode_tokens_per_s']
bound = bw * 1e9 / nbytes
print('| decode %s, %d tokens, RSS %.2f GB | %.2f tok/s | %.2f tok/s = %.1f GB/s / %.2f GB per token | %.2f | %s |'
      % (kind, r['completion_tokens'], rss / 1e6, dec, bound, bw, nbytes / 1e9, dec / bound, llama))
PY
done

# The q8 and q4 models' prompts in bf16 precision: tiles of their matrices widened to BF16.
for mp in "$M":f32 "$M":bf16 "${Q8:-$M-q8}":bf16:q8 "${Q4:-$M-q4}":bf16:q4; do
	IFS=: read -r dir p kind <<<"$mp"
	[[ -f $dir/config.json ]] || continue
	run "$dir" "$TMP/p$p$kind.json" -p "$prompt512" --max-tokens 1 --precision "$p" ||
	    continue
	/usr/bin/python3 - "$TMP/p$p$kind.json" "$peak" "$params" "$p${kind:+ ($kind weights)}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
peak, params, p = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
pt, ms = r['prompt_tokens'], r['timings']['prefill_ms']
rate = pt / (ms / 1e3)
bound = peak * 1e9 / (2 * params)
print('| prefill %d tokens, %s | %.1f tok/s (%.1f s) | %.1f tok/s at sgemm peak %.0f GFLOP/s | %.2f | %s |'
      % (pt, p, rate, ms / 1e3, bound, peak, rate / bound, '34.0 tok/s (BF16)'))
PY
done

# Batch OCR: four conversations about four small images (48 tokens each) with the q8 model,
# one at a time and with --each --batch 4: generated tokens per second of decoding in all
# (wall time less the prompts' prefill).
Q8M=${Q8:-$M-q8}
if [[ -f $Q8M/config.json ]]; then
	build/bench/vit pixels 1 12 16 >"$TMP/px1"
	cat "$TMP/px1" "$TMP/px1" "$TMP/px1" "$TMP/px1" >"$TMP/px4"
	bin/qvl-vit -m "$Q8M" -t "$T" --precision bf16 "$TMP/px4" |
	    bin/qvl-merge -m "$Q8M" -t "$T" --precision bf16 >"$TMP/emb4"
	for b in 1 4; do
		/usr/bin/time -f '%e' -o "$TMP/batch$b.time" bin/qvl-decode -m "$Q8M" -t "$T" \
		    --json --each --batch $b -p 'Write a long story.' --max-tokens 64 \
		    --max-repeat 0 --ignore-eos "$TMP/emb4" >"$TMP/batch$b.json"
	done
	/usr/bin/python3 - "$TMP/batch1" "$TMP/batch4" <<'PY'
import json, sys
def rate(base):
    runs = [json.loads(l) for l in open(base + '.json')]
    wall = float(open(base + '.time').read().split()[-1])
    steps = sum(r['completion_tokens'] - 1 for r in runs)
    return steps / (wall - sum(r['timings']['prefill_ms'] for r in runs) / 1e3)
one, four = rate(sys.argv[1]), rate(sys.argv[2])
print('| decode q8, 4 conversations (--each --batch 4) | %.2f tok/s in all | %.2f tok/s one at a time (--batch 1) | %.2f | |'
      % (four, one, four / one))
PY
fi

# Last: the 7B pushes the 3B out of the page cache.  The 3B models are dropped from it first
# (no process maps them now): with both in 24 GB the kernel also evicts pages of the 7B
# while it decodes, and the row measured the disk (1.07 instead of 1.86 tok/s).
M7=${M7:-$(dirname "$M")/7b}
if [[ -f $M7/config.json ]]; then
	/usr/bin/python3 - "$M"*/*.safetensors <<'PY'
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
	bytes7=$(build/bench/decode "$M7" | awk '{ split($2, kv, "="); print kv[2] }')
	if run "$M7" "$TMP/7b.json" -p 'Write a long story.' --max-tokens 16 --max-repeat 0 \
	    --ignore-eos; then
		/usr/bin/python3 - "$TMP/7b.json" "$bytes7" "$bw" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
nbytes, bw = int(sys.argv[2]), float(sys.argv[3])
rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', open(sys.argv[1] + '.time').read()).group(1))
dec = r['timings']['decode_tokens_per_s']
bound = bw * 1e9 / nbytes
print('| decode bf16 7B, %d tokens, RSS %.2f GB | %.2f tok/s | %.2f tok/s = %.1f GB/s / %.2f GB per token | %.2f | |'
      % (r['completion_tokens'], rss / 1e6, dec, bound, bw, nbytes / 1e9, dec / bound))
PY
	fi
fi
