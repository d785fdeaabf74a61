#!/bin/bash
# vit.sh: qvl-vit and qvl-merge end to end on the golden cases (stream in, stream out,
# compared with qvl-dump --compare at 1e-4 of max |reference|), pass-through, taps, and the
# errors for bad records, bad options and checkpoints without (all of) the vision weights.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
MK="$PY tests/vit_stream.py"

# golden MODEL DIR CASE LAST_BLOCK EMBEDS_NAME
golden() {
	local model=$1 dir=$2 case=$3 last=$4 emb=$5 ref=$2/$3.safetensors
	check "$case: stream" $MK "$ref" "$TMP/$case.in"
	check "$case: qvl-vit" sh -c "'$BIN/qvl-vit' -m '$model' --threads 2 --tap patch_embed \
	    --tap block.0 '$TMP/$case.in' > '$TMP/$case.vit'"
	check "$case: vit_hidden and taps" "$BIN/qvl-dump" --compare "$ref" --concat \
	    --map vit_hidden=vis_block$last --map patch_embed=vis_patch_embed \
	    --map block.0=vis_block0 --select vit_hidden --select patch_embed --select block.0 \
	    "$TMP/$case.vit"
	check "$case: qvl-merge" sh -c "'$BIN/qvl-merge' -m '$model' < '$TMP/$case.vit' \
	    > '$TMP/$case.emb'"
	check "$case: $emb" "$BIN/qvl-dump" --compare "$ref" --concat --map image_embeds=$emb \
	    --select image_embeds "$TMP/$case.emb"
}

G=$DATA/golden/tiny
golden "$TINY" "$G" img_main 3 image_embeds
golden "$TINY" "$G" img_small_minpix 3 image_embeds
golden "$TINY" "$G" img_maxpix 3 image_embeds
golden "$TINY" "$G" two_images 3 image_embeds
golden "$TINY" "$G" video 3 video_embeds
golden "$UNTIED" "$DATA/golden/untied" u_img_wide 2 image_embeds
golden "$UNTIED" "$DATA/golden/untied" u_two_images 2 image_embeds

# Other records pass through, first and unchanged; meta travels; taps come before vit_hidden.
check_grep "pass-through first" '^0	note	U8	\[3\]	\{"source":"vit.sh"\}' \
    "$BIN/qvl-dump" "$TMP/two_images.emb"
check_grep "taps before vit_hidden" '^3	vit_hidden	F32	\[160, 64\].*"grid_thw":\[1,10,16\]' \
    "$BIN/qvl-dump" "$TMP/two_images.vit"
check_grep "embeds keep meta" '^3	image_embeds	F32	\[40, 64\].*two_images.safetensors#0' \
    "$BIN/qvl-dump" "$TMP/two_images.emb"
# A video under the image record name; QVL_MODEL as the default model; stdin as input.
check "video as pixel_values" $MK "$G/video.safetensors" "$TMP/v2.in" --name pixel_values
check "video via QVL_MODEL and stdin" sh -c "'$BIN/qvl-vit' < '$TMP/v2.in' | '$BIN/qvl-merge' \
    > '$TMP/v2.emb'"
check "video embeds" "$BIN/qvl-dump" --compare "$G/video.safetensors" \
    --map image_embeds=video_embeds --select image_embeds "$TMP/v2.emb"

# --precision bf16: BF16 products (qvl's AMX tiles, with the SwiGLU and residual adds in
# their pass, where the CPU has AMX; oneDNN with AVX512_BF16 alone; float32 elsewhere;
# attention's products too).  Measured: vit_hidden within 4.9e-3 and image_embeds within
# 6.6e-3 of max |ref| on all golden cases (5.8e-3 without AMX); the test allows 2e-2.
for c in tiny:img_main:3 untied:u_img_wide:2; do
	IFS=: read -r m case last <<<"$c"
	model=$TINY; [[ $m = untied ]] && model=$UNTIED
	ref=$DATA/golden/$m/$case.safetensors
	check "$case: bf16 vit + merge" sh -c "'$BIN/qvl-vit' -m '$model' --precision bf16 \
	    '$TMP/$case.in' > '$TMP/$case.bvit' && '$BIN/qvl-merge' -m '$model' --precision bf16 \
	    '$TMP/$case.bvit' > '$TMP/$case.bemb'"
	check "$case: bf16 vit_hidden within 2e-2" "$BIN/qvl-dump" -q --compare "$ref" --rtol 2e-2 \
	    --map vit_hidden=vis_block$last --select vit_hidden "$TMP/$case.bvit"
	check "$case: bf16 image_embeds within 2e-2" "$BIN/qvl-dump" -q --compare "$ref" \
	    --rtol 2e-2 --select image_embeds "$TMP/$case.bemb"
done
# bf16 attention runs fixed tasks, each on one thread: the same bits for any --threads.
check "bf16 vit: 1 and 3 threads give the same bits" sh -c "'$BIN/qvl-vit' -m '$TINY' \
    --precision bf16 -t 1 '$TMP/two_images.in' > '$TMP/b1' && '$BIN/qvl-vit' -m '$TINY' \
    --precision bf16 -t 3 '$TMP/two_images.in' > '$TMP/b3' && cmp -s '$TMP/b1' '$TMP/b3'"
check_fails "bad --precision" 2 "$BIN/qvl-vit" --precision f16 "$TMP/img_main.in"
check_fails "merge: bad --precision" 2 "$BIN/qvl-merge" --precision x "$TMP/img_main.vit"

# Options.
check "qvl-vit -h" "$BIN/qvl-vit" -h
check "qvl-merge -h" "$BIN/qvl-merge" -h
check_fails "unknown tap" 2 "$BIN/qvl-vit" --tap nope "$TMP/img_main.in"
check_grep "tap past the last block" 'block.0 to block.3' "$BIN/qvl-vit" --tap block.4 \
    "$TMP/img_main.in"
check_fails "bad --threads" 2 "$BIN/qvl-vit" --threads 0 "$TMP/img_main.in"

# Bad records.
check "narrow stream" $MK "$G/img_small_minpix.safetensors" "$TMP/narrow.in" --cols 588
check_grep "width not 3*2*14*14" 'record 1 \(pixel_values\): pixel_values: 588 values per patch, this model takes 1176' \
    "$BIN/qvl-vit" "$TMP/narrow.in"
check_fails "width exit status" 1 "$BIN/qvl-vit" "$TMP/narrow.in"
check "wrong grid stream" $MK "$G/img_small_minpix.safetensors" "$TMP/grid.in" --grid 1,4,4
check_grep "grid does not match N" 'grid_thw \[1, 4, 4\] has 16 patches, pixel_values has 24 rows' \
    "$BIN/qvl-vit" "$TMP/grid.in"
check "odd grid stream" $MK "$G/img_small_minpix.safetensors" "$TMP/odd.in" --grid 1,3,8
check_grep "odd grid side" 'multiples of the merge size 2' "$BIN/qvl-vit" "$TMP/odd.in"
check_grep "merge: width of another model" 'want F32 \[N, 64\] for this model' \
    "$BIN/qvl-merge" -m "$TINY" "$TMP/u_img_wide.vit"
check_grep "not a stream" 'qvl-vit: <stdin>: record 0: .*magic' sh -c \
    "echo 'this is not a qvl stream at all' | '$BIN/qvl-vit'"

# Checkpoints without the vision tower, or missing one tensor of it.
mkdir -p "$TMP/novis" "$TMP/partial"
cp "$TINY/config.json" "$TMP/novis/"
cp "$TINY/config.json" "$TMP/partial/"
check "broken checkpoints" $PY - "$TINY/model.safetensors" "$TMP" <<'PYEOF'
import json, struct, sys
src, tmp = sys.argv[1:]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    def write(path, names):
        h, blobs, off = {}, [], 0
        for k in names:
            e = hdr[k]
            a, b = e["data_offsets"]
            f.seek(8 + n + a)
            blobs.append(f.read(b - a))
            h[k] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [off, off + b - a]}
            off += b - a
        j = json.dumps(h).encode()
        j += b" " * ((8 - len(j) % 8) % 8)
        with open(path, "wb") as o:
            o.write(struct.pack("<Q", len(j)) + j + b"".join(blobs))
    write(tmp + "/novis/model.safetensors", ["model.norm.weight"])
    write(tmp + "/partial/model.safetensors",
          [k for k in hdr if k.startswith("visual.") and k != "visual.blocks.3.mlp.up_proj.bias"])
PYEOF
check_grep "no vision weights" 'novis: checkpoint has no vision tower' \
    "$BIN/qvl-vit" -m "$TMP/novis" "$TMP/img_main.in"
check_fails "no vision weights: status" 1 "$BIN/qvl-vit" -m "$TMP/novis" "$TMP/img_main.in"
check_grep "merge: no merger" 'checkpoint has no patch merger' \
    "$BIN/qvl-merge" -m "$TMP/novis" "$TMP/img_main.vit"
check_grep "missing tensor" 'no tensor visual.blocks.3.mlp.up_proj.bias' \
    "$BIN/qvl-vit" -m "$TMP/partial" "$TMP/img_main.in"
finish
