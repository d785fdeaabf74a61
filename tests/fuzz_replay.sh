#!/bin/bash
# Replays every fuzz corpus (tests/fuzz/NAME/) through its target built with ASan and UBSan:
# each input that once crashed a parser stays a regression test.
. "$(dirname "$0")/lib.sh"
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c); name=${name#fuzz_}
	replay=build/asan/fuzz/replay_$name
	files=(tests/fuzz/$name/*)
	[[ -e ${files[0]} ]] || continue
	check "fuzz corpus $name (${#files[@]} inputs)" "$replay" "${files[@]}"
done
finish
