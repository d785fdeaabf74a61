# tests/ref/other_dims.sh: sourced by tests/other_dims.sh and tests/long/other_dims.sh (after
# tests/lib.sh).  other_dims CONFIG builds a random-weight model of that config into $TMP,
# runs the qvl pipeline on an image, two images, a 2 fps video, an image followed by a 3 fps
# video with an odd frame count, and all of these in one prompt of over 256 tokens, and compares every stage with the numpy reference
# (tests/ref/qwen25vl_ref.py check): patch_embed, vision blocks 0..2 and vit_hidden, image_embeds, the
# logits of the prefill's last position and of every generated step at 1e-4 of max|ref|,
# and the greedy ids.  OD_THREADS sets the programs' --threads (default 2).
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
REF=tests/ref
G=$DATA/golden/tiny

# od_case MODEL TAG PROMPT PIXELS: the pipeline on one stream of pixel_values, then the check.
od_case() { # model tag prompt pixels [qvl-decode options...]
	local m=$1 tag=$2 prompt=$3 px=$4 o=$TMP/$2
	shift 4
	local extra="$*"
	check "$tag: qvl-vit" sh -c "'$BIN/qvl-vit' -m '$m' --threads ${OD_THREADS:-2} --tap patch_embed --tap block.0 \
	    --tap block.1 --tap block.2 '$px' > '$o.vit'"
	check "$tag: qvl-merge" sh -c "'$BIN/qvl-merge' -m '$m' --threads ${OD_THREADS:-2} '$o.vit' > '$o.emb'"
	check "$tag: prompt ids" sh -c "'$BIN/qvl-decode' -m '$m' -p '$prompt' --prompt-ids \
	    '$o.emb' > '$o.ids'"
	check "$tag: qvl-decode" sh -c "'$BIN/qvl-decode' -m '$m' -p '$prompt' --json --max-tokens 8 \
	    --ignore-eos --max-repeat 0 --threads ${OD_THREADS:-2} $extra --logits '$o.logits' \
	    '$o.emb' > '$o.json'"
	check "$tag: same as the reference" $PY $REF/qwen25vl_ref.py check "$m" --pixels "$px" \
	    --vit "$o.vit" --emb "$o.emb" --ids "$o.ids" --decode "$o.json" --logits "$o.logits"
}

# od_case_bf16 MODEL TAG PROMPT PIXELS: the pipeline with --precision bf16 (BF16 products,
# attention's included), against the same reference at 2e-2 of max|ref| (measured on
# hd128_tied's mixed prompt: vision blocks <= 3.4e-3, image_embeds 3.3e-3, logits 2.5e-3).
od_case_bf16() {
	local m=$1 tag=$2 prompt=$3 px=$4 o=$TMP/$2.bf16
	check "$tag bf16: qvl-vit | qvl-merge" sh -c "'$BIN/qvl-vit' -m '$m' --precision bf16 \
	    --tap patch_embed --tap block.0 --tap block.1 --tap block.2 '$px' > '$o.vit' &&
	    '$BIN/qvl-merge' -m '$m' --precision bf16 '$o.vit' > '$o.emb'"
	check "$tag bf16: prompt ids" sh -c "'$BIN/qvl-decode' -m '$m' -p '$prompt' --prompt-ids \
	    '$o.emb' > '$o.ids'"
	check "$tag bf16: qvl-decode" sh -c "'$BIN/qvl-decode' -m '$m' -p '$prompt' --json \
	    --max-tokens 8 --ignore-eos --max-repeat 0 --precision bf16 --logits '$o.logits' \
	    '$o.emb' > '$o.json'"
	check "$tag bf16: the reference within 2e-2" $PY $REF/qwen25vl_ref.py check "$m" \
	    --pixels "$px" --vit "$o.vit" --emb "$o.emb" --ids "$o.ids" --decode "$o.json" \
	    --logits "$o.logits" --tol 2e-2
}

# other_dims CONFIG_NAME
other_dims() {
	local name=$1 m=$TMP/$1
	check "$name: random model" $PY $REF/mkrandom.py --config "$REF/configs/$name.json" \
	    --seed 11 --out "$m" --tokenizer-dir "$TINY"
	[[ -f $m/model.safetensors ]] || return
	check "$name: resize" sh -c "
	    '$BIN/qvl-resize' '$G/img_main_main.png' > '$TMP/$name.img.px' &&
	    '$BIN/qvl-resize' '$G/two_images_left.jpg' '$G/two_images_right.png' > '$TMP/$name.two.px' &&
	    '$BIN/qvl-resize' --video --fps 2 '$G'/video_clip_f[0-3].png > '$TMP/$name.vid2.px' &&
	    { '$BIN/qvl-resize' '$G/two_images_right.png' &&
	      '$BIN/qvl-resize' --video --fps 3 '$G'/video_clip_f0.png '$G'/video_clip_f1.png \
	        '$G'/video_clip_f2.png '$G'/video_clip_f3.png '$G'/video_clip_f2.png \
	        '$G'/video_clip_f1.png '$G'/video_clip_f0.png; } > '$TMP/$name.mix3.px' &&
	    { '$BIN/qvl-resize' '$G/img_main_main.png' '$G/two_images_left.jpg' &&
	      cat '$TMP/$name.mix3.px'; } > '$TMP/$name.long.px'"
	od_case "$m" "$name.img" "Describe this image." "$TMP/$name.img.px"
	od_case "$m" "$name.two" "Compare two images." "$TMP/$name.two.px"
	od_case "$m" "$name.vid2" "What is in the video?" "$TMP/$name.vid2.px"
	od_case "$m" "$name.mix3" "<image> and then <video> What changed?" "$TMP/$name.mix3.px"
	# 117 + 40 + 16 + 96 vision tokens: in passes of 128 rows the prompt spans three
	od_case "$m" "$name.long" "Describe these." "$TMP/$name.long.px" --prefill-rows 128
	[[ ${OD_KEEP:-0} = 1 ]] || rm -rf "$m"
}

# od_sensitivity CONFIG_NAME: the comparison can fail.  The reference reads a copy of the model
# whose config differs in one value qvl depends on; qvl's outputs from the last other_dims run
# of that config (kept with OD_KEEP=1) must then be rejected.  tokens_per_second 4 moves the
# video's temporal positions (seen only through the logits: 1e-1 of max|ref|); window_size 224
# changes the vision windows; mrope_section swapped between t and h moves the LLM rotation
# channels (1e-3 of max|ref|, 10x the tolerance, 1000x the float32 noise).
od_sensitivity() {
	local name=$1 m=$TMP/$1 mut=$TMP/$1.mut
	local how
	for how in "v['tokens_per_second'] = 4" "v['window_size'] = 224" \
	    "s = c['rope_scaling']['mrope_section']; s[0], s[1] = s[1], s[0]"; do
		rm -rf "$mut" && mkdir -p "$mut" && ln -s "$m/model.safetensors" "$mut/" &&
		    $PY -c "import json; c = json.load(open('$m/config.json')); v = c['vision_config']
$how
json.dump(c, open('$mut/config.json', 'w'))"
		check_grep "$name: reference rejects qvl when it reads $how" \
		    '^FAIL +(vision|vit_hidden|image_embeds|logits step)' $PY $REF/qwen25vl_ref.py \
		    check "$mut" --pixels "$TMP/$name.mix3.px" --vit "$TMP/$name.mix3.vit" \
		    --emb "$TMP/$name.mix3.emb" --ids "$TMP/$name.mix3.ids" \
		    --decode "$TMP/$name.mix3.json" --logits "$TMP/$name.mix3.logits"
	done
	rm -rf "$mut" "$m"
}

# od_shapes MODEL TAG: grids far from the goldens' (their pixels matched Pillow's resize bit
# for bit when they were chosen): 28x5600, at the 200 aspect limit, one merge unit wide, 50
# windows of 4x1 units; in one prompt 812x28 twice (one unit tall, 8 windows, the last a
# single unit), 28x28 (a single unit: a window and a frame of 4 rows) and 84x196 (7x3 units:
# windows of 4x3 and 3x3); 420x588, 21x15 units, partial windows on both edges, also in bf16;
# a 5-frame 84x56 video at 3 fps, its last frame repeated (3 frame pairs of 2x3 units).
# --threads 3 and 1 split rows, windows and heads unevenly.
od_shapes() {
	local m=$1 tag=$2 R="$BIN/qvl-resize --min-tokens 1 --size"
	check "$tag shapes: resize" sh -c "
	    $R 28x5600 '$G/img_main_main.png' > '$TMP/$tag.tall.px' &&
	    $R 812x28 '$G/two_images_left.jpg' '$G/img_main_main.png' > '$TMP/$tag.wide.px' &&
	    $R 28x28 '$G/two_images_right.png' >> '$TMP/$tag.wide.px' &&
	    $R 84x196 '$G/img_small_minpix_small.jpg' >> '$TMP/$tag.wide.px' &&
	    $R 420x588 '$G/img_maxpix_large.png' > '$TMP/$tag.page.px' &&
	    $R 84x56 --video --fps 3 '$G'/video_clip_f[0-3].png '$G/video_clip_f2.png' \
	        > '$TMP/$tag.vid5.px'"
	OD_THREADS=3 od_case "$m" "$tag.tall" "Read it." "$TMP/$tag.tall.px"
	OD_THREADS=3 od_case "$m" "$tag.wide" "<image>, <image>; <image> or <image>?" "$TMP/$tag.wide.px"
	OD_THREADS=1 od_case "$m" "$tag.page" "Read the page." "$TMP/$tag.page.px"
	od_case_bf16 "$m" "$tag.page" "Read the page." "$TMP/$tag.page.px"
	OD_THREADS=3 od_case "$m" "$tag.vid5" "What happens?" "$TMP/$tag.vid5.px"
}
