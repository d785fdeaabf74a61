#!/bin/sh
# video.sh [FRAME...]: ask about a short video given as frames (2 per second).
# Environment: QVL_MODEL, MAX_TOKENS, QVL_BIN (see lib.sh).
. "$(dirname "$0")/lib.sh"
if [ $# -gt 0 ]; then
	frames=$*
else
	frames="$EX/video/f0.png $EX/video/f1.png $EX/video/f2.png $EX/video/f3.png"
fi

say "A video is its frames: here four, two per second.  qvl-resize --video makes one record" \
	"of them (grid_thw [frames/2, h, w], fps and second_per_grid_t in the meta, which place" \
	"the frames in time for the decoder's rotary positions)."
run "qvl-resize --video --fps 2 $frames | qvl-dump"
say "The same through the model:"
run "qvl-resize --video --fps 2 $frames | qvl-vit | qvl-merge | qvl-decode --max-tokens $MAX_TOKENS -p 'What happens in this video?'"
say "A video file: ffmpeg cuts it into frames on a pipe, qvl-resize samples them as the" \
	"reference does:  ffmpeg -i clip.mp4 -f image2pipe -c:v png - | qvl-resize --video --input-fps 30 - | ..."
