#!/usr/bin/env bash
# tests/resize.sh: qvl-resize as a program: golden pixel_values through the stream, options,
# video, and bad inputs rejected with the right exit status.
source "$(dirname "$0")/lib.sh"
R=$BIN/qvl-resize
D=$BIN/qvl-dump
G=$DATA/golden/tiny
F=$DATA/resize

# golden cases through the program and the stream format
check img_main sh -c "$R $G/img_main_main.png | $D --compare $G/img_main.safetensors -"
check img_small sh -c "$R $G/img_small_minpix_small.jpg | $D --compare $G/img_small_minpix.safetensors -"
check img_maxpix sh -c "$R --max-pixels 15680 $G/img_maxpix_large.png | $D --compare $G/img_maxpix.safetensors -"
check two_images sh -c "$R $G/two_images_left.jpg $G/two_images_right.png | $D --concat --compare $G/two_images.safetensors -"
check video sh -c "$R --video --fps 2 $G/video_clip_f*.png | $D --compare $G/video.safetensors --map pixel_values=pixel_values_videos -"
check video_stdin sh -c "cat $G/video_clip_f*.png | $R --video - | $D --compare $G/video.safetensors --map pixel_values=pixel_values_videos -"
check stdin sh -c "$R - < $G/img_main_main.png | $D --compare $G/img_main.safetensors -"
check model_dir sh -c "$R -m $TINY $G/img_main_main.png | $D --compare $G/img_main.safetensors -"
check_grep meta '"grid_thw":\[1,18,26\].*"scale":\[1\.016' sh -c "$R $G/img_main_main.png | $D -"
check_grep video_meta '"kind":"video".*"fps":3\.0.*"second_per_grid_t":0\.666' sh -c "$R --video --fps 3 $G/video_clip_f0.png $G/video_clip_f1.png $G/video_clip_f2.png | $D -"
check_grep video_odd '\[192, 1176\].*"frames":3' sh -c "$R --video $G/video_clip_f0.png $G/video_clip_f1.png $G/video_clip_f2.png | $D -"

# sizes without pixels
check_grep info '"resized_size":\[364,252\].*"tokens":117' $R --info $G/img_main_main.png
check_grep assume '"resized_size":\[588,840\]' $R --info --assume-size 2480x3508 --dpi 300:72
# the same meta as an image of that size with no density: --dpi FROM:TO says it is FROM
check_grep assume_dpi '"dpi":\[300\.0,300\.0\],"dpi_scale"' $R --info --assume-size 2480x3508 --dpi 300:72
check_grep tokens '"tokens":16\b' $R --info --assume-size 1000x1000 --max-tokens 16
check_grep min_tokens '"resized_size":\[252,252\]' $R --info --assume-size 10x10 --min-tokens 81
check_grep size '"resized_size":\[644,476\]' $R --info --size 640x480 $G/img_main_main.png
check_grep dpi_auto 'dpi_scale":\[0\.24' $R --info --dpi auto $F/dpi300.png
check_grep dpi_auto_v 'density 300x300 dpi, scaling' $R -v --info --dpi auto $F/dpi300.png
# 200x100 dpi: both axes come down to 72 dpi, each from its own density
check_grep dpi_auto_unequal 'dpi_scale":\[0\.3599[0-9]*,0\.7199' $R --info --dpi auto $F/j422.jpg
check_grep dpi_auto_none '"orig_size":\[37,23\],"resized_size":\[84,56\],"grid_thw":\[1,4,6\],"scale":\[[0-9.]+,[0-9.]+\],"tokens":6}' $R --info --dpi auto $F/g8.png

# the resized image, byte for byte Pillow's
check png sh -c "$R --png $TMP/main.png $G/img_main_main.png >/dev/null && test -s $TMP/main.png"
check png_dir sh -c "mkdir -p $TMP/pd && $R --png-dir $TMP/pd $G/img_main_main.png $G/two_images_left.jpg >/dev/null && test -s $TMP/pd/img_main_main.png && test -s $TMP/pd/two_images_left.png"
check out_file sh -c "$R -o $TMP/o.qvl $G/img_main_main.png && $D --compare $G/img_main.safetensors $TMP/o.qvl"
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
	check png_vs_pillow /usr/bin/python3 -c "
import sys, numpy as np
from PIL import Image
a = np.array(Image.open('$TMP/main.png'))
b = np.array(Image.open('$G/img_main_main.png').convert('RGB').resize((364, 252), Image.BICUBIC))
sys.exit(0 if (a == b).all() else 1)"
fi

# video: sampling every frame of a clip at --input-fps
check_grep input_fps '"frames":4.*"fps":0\.8.*"frame_indices":\[0,3,6,9\].*"input_frames":10' sh -c "
	for i in 0 1 2 3 4 5 6 7 8 9; do cat $G/video_clip_f\$((i % 4)).png; done |
	$R --video --input-fps 2 --fps 0.5 - | $D -"

# bad inputs and usage
printf 'hello\n' > $TMP/text.png
head -c 300 $G/img_main_main.png > $TMP/cut.png
head -c 400 $G/two_images_left.jpg > $TMP/cut.jpg
: > $TMP/empty.png
check_fails text 1 $R $TMP/text.png
check_grep text_msg 'qvl-resize: .*text.png: not a PNG or JPEG' $R $TMP/text.png
check_fails cut_png 1 $R $TMP/cut.png
check_fails cut_jpg 1 $R $TMP/cut.jpg
check_fails empty 1 $R $TMP/empty.png
check_fails missing 1 $R $TMP/nonexistent.png
check_grep limit 'over the limit' $R --max-input-pixels 1000 $G/img_main_main.png
check_fails limit_status 1 $R --max-input-pixels 1000 $G/img_main_main.png
check_grep ratio 'aspect ratio 250 is over 200' $R --info --assume-size 7000x28
# rounding to the grid can push the ratio over 200: the processor's second check refuses it
check_grep ratio_rounded 'aspect ratio 201 of the resized 28x5628' $R --info --assume-size 29x5615
check_fails keep_going 1 sh -c "$R -k $TMP/text.png $G/img_main_main.png > $TMP/k.qvl"
check_grep keep_going_out '\[468, 1176\]' $D $TMP/k.qvl
check_fails no_partial 1 $R -o $TMP/partial.qvl $G/img_main_main.png $TMP/text.png
check no_partial_file test ! -e $TMP/partial.qvl
check_fails usage 2 $R
check_fails bad_opt 2 $R --dpi 300 $G/img_main_main.png
check_fails bad_size 2 $R --size 0x10 $G/img_main_main.png
check_fails assume_needs_info 2 $R --assume-size 10x10
# a given --min-pixels also raises the floor of the video budget's maximum (fetch_video:
# max(min(VIDEO_MAX_PIXELS, total / n * 2), int(min_pixels * 1.05)))
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
	/usr/bin/python3 -c "
from PIL import Image
for i in range(4): Image.new('RGB', (1280, 720), (i * 40, 90, 20)).save('$TMP/v%d.png' % i)"
	check_grep video_min_pixels '"resized_size":\[1120,616\]' $R --video --input-fps 2 \
		--min-pixels 700000 --info $TMP/v0.png $TMP/v1.png $TMP/v2.png $TMP/v3.png
fi
check_fails video_one_frame 1 sh -c "$R --video --input-fps 30 $G/video_clip_f0.png"
check_fails video_cut 1 sh -c "cat $G/video_clip_f0.png $TMP/cut.png | $R --video -"
check help_exit sh -c "$R -h 2>&1 | grep -q usage"
finish
