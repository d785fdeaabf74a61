#!/bin/sh
# bench/tokenize.sh: builds and runs bench/tokenize (single-threaded tokenizer throughput on a
# 5 MB mixed-script text made from the encode goldens, and the load time of tokenizer.json).
# The reference anchor, Rust tokenizers 0.22.2 on the same kind of text, is 1.2 MB/s
# (tests/data/tokenizer/bench.json).  Usage: bench/tokenize.sh [MODEL_DIR [MBYTES]]
set -e
cd "$(dirname "$0")/.."
make -s build/bench/tokenize
exec build/bench/tokenize "${1:-tests/data/models/tiny}" tests/data/tokenizer/golden.jsonl "${2:-5}"
