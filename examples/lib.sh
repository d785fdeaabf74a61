# examples/lib.sh: sourced by the example scripts.  Finds the programs (QVL_BIN, else the
# repository's bin/ when built, else PATH) and a model (QVL_MODEL, else the tiny test model),
# and prints every command before running it, so each script shows what it does.
set -eu
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$EXAMPLES")
if [ -n "${QVL_BIN:-}" ]; then
	PATH=$QVL_BIN:$PATH
elif [ -x "$ROOT/bin/qvl-resize" ]; then
	PATH=$ROOT/bin:$PATH
fi
export PATH
: "${QVL_MODEL:=$ROOT/tests/data/models/tiny}"
export QVL_MODEL
: "${MAX_TOKENS:=128}"
: "${OUT:=$EXAMPLES/out}"
# the sample documents, named relative to the current directory when they are under it
EX=${EXAMPLES#"$PWD"/}

# say LINE...: a comment block, one line per argument
say() { echo; for line in "$@"; do printf '# %s\n' "$line"; done; }
run() { printf '$ %s\n' "$1"; eval "$1"; }

# The test models have random weights: what they "read" is noise, and the scripts say so.
test_model() {
	case $(cd "$QVL_MODEL" 2>/dev/null && pwd -P) in
	"$(cd "$ROOT" && pwd -P)"/tests/data/models/*) return 0 ;;
	esac
	return 1
}
if [ -n "${QVL_EXAMPLES_NOTED:-}" ]; then
	:	# a script that runs another has said it
elif test_model; then
	cat <<NOTE
# Model: $QVL_MODEL
#   a test model of this repository: the real Qwen2.5-VL structure, random weights,
#   so its answers are noise.  For real answers, point QVL_MODEL at a checkpoint, e.g.
#     QVL_MODEL=~/models/Qwen2.5-VL-7B-Instruct $0
#   (any Qwen2.5-VL directory from the Hugging Face hub: config.json, *.safetensors, tokenizer).
NOTE
else
	printf '# Model: %s\n' "$QVL_MODEL"
fi
QVL_EXAMPLES_NOTED=1
export QVL_EXAMPLES_NOTED
