#!/bin/sh
# inspect.sh [IMAGE]: look inside the pipeline: keep intermediate tensors, list them, take
# statistics, export them for numpy, and compare runs with each other and with the reference.
# Writes $OUT/inspect/ (default examples/out/inspect/).
# Environment: QVL_MODEL, QVL_BIN, OUT (see lib.sh).
. "$(dirname "$0")/lib.sh"
img=${1:-$EX/docs/receipt.jpg}
dir=$OUT/inspect
rm -rf "$dir"
mkdir -p "$dir"

say "Every stage reads and writes a qvl-stream (man 5 qvl-stream).  tee keeps a stage's" \
	"output; qvl-vit --tap adds inner layers, which the later stages pass through."
run "qvl-resize '$img' | tee '$dir/pixels.qvl' | qvl-vit --tap patch_embed --tap block.0 | qvl-merge > '$dir/stages.qvl'"
say "One line per record: index, name, dtype, shape, meta."
run "qvl-dump '$dir/pixels.qvl' '$dir/stages.qvl'"
say "Statistics (min, max, mean, standard deviation, NaN and Inf counts) and the first values:"
run "qvl-dump -s -n 4 --select image_embeds '$dir/stages.qvl'"
say "Every tensor as a .npy file, for numpy:"
run "qvl-dump --npy '$dir/npy' '$dir/stages.qvl'"
run "ls '$dir/npy'"
say "Two runs compared: one thread against all.  Were the sums run in another order, the" \
	"numbers would differ in the last bits; qvl-dump --compare says by how much, and whether" \
	"that is within its tolerance (it exits 1 when not)."
run "qvl-resize '$img' | qvl-vit --threads 1 | qvl-merge --threads 1 | qvl-dump --compare '$dir/stages.qvl' --select image_embeds -"

tiny=$ROOT/tests/data/models/tiny
golden=$ROOT/tests/data/golden/tiny
if [ -d "$golden" ] && [ "$(cd "$QVL_MODEL" && pwd -P)" = "$(cd "$tiny" && pwd -P)" ]; then
	G=${golden#"$PWD"/}
	say "And against the reference: the tiny model's tensors as Hugging Face transformers" \
		"computes them, in tests/data/golden/tiny (vis_block0 is block.0's output):"
	run "qvl-resize $G/img_main_main.png | qvl-vit --tap block.0 | qvl-merge | qvl-dump --compare $G/img_main.safetensors --map block.0=vis_block0 --select block.0 --select image_embeds -"
fi
