#!/bin/bash
# qvl-dump: listing, stats, values, .npy export, compare pass and fail, bad input.
. "$(dirname "$0")/lib.sh"
G=$DATA/golden/tiny

check_grep "lists every tensor of the tiny model" "^0	model.embed_tokens.weight	BF16	\[151936, 64\]" \
	"$BIN/qvl-dump" "$TINY"
n=$("$BIN/qvl-dump" "$TINY/model.safetensors" | wc -l)
check "tiny model has 92 tensors (got $n)" test "$n" -eq 92
check_grep "stats" "min -1.79226  max 2.1459" "$BIN/qvl-dump" -s --select pixel_values "$G/img_main.safetensors"
check_grep "values" "44152 44152 85206" "$BIN/qvl-dump" -n 3 --select gen_ids "$G/img_main.safetensors"
check "golden compares equal to itself" "$BIN/qvl-dump" --compare "$G/img_main.safetensors" "$G/img_main.safetensors"

# A perturbed copy, written as a stream through the npy export and back: numpy reads the .npy
# files, perturbs one value and writes a qvl stream.
check "npy export" "$BIN/qvl-dump" --npy "$TMP/npy" --select vis_block3 --select input_ids "$G/img_main.safetensors"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	/usr/bin/python3 - "$TMP" <<'PY'
import json, struct, sys
import numpy as np
tmp = sys.argv[1]
def record(f, name, a):
    head = json.dumps({"name": name, "dtype": {"float32": "F32", "int64": "I64"}[str(a.dtype)],
                       "shape": list(a.shape), "meta": {}}).encode()
    head += b" " * (-len(head) % 8)
    f.write(b"QVL1" + struct.pack("<I", len(head)) + head + a.tobytes())
v = np.load(tmp + "/npy/vis_block3.npy")
ids = np.load(tmp + "/npy/input_ids.npy")
assert v.dtype == np.float32 and v.shape == (468, 64) and ids.shape == (142,), (v.shape, ids.shape)
with open(tmp + "/same.qvl", "wb") as f:
    record(f, "vis_block3", v)
    record(f, "input_ids", ids)
w = v.copy(); w[3, 5] += 0.01 * np.abs(v).max()
with open(tmp + "/perturbed.qvl", "wb") as f:
    record(f, "vis_block3", w)
PY
	check "numpy reads the .npy files and writes a stream" test -s "$TMP/perturbed.qvl"
	check "stream equal to the golden passes" "$BIN/qvl-dump" --compare "$G/img_main.safetensors" "$TMP/same.qvl"
	check_fails "perturbed stream fails" 1 "$BIN/qvl-dump" --compare "$G/img_main.safetensors" "$TMP/perturbed.qvl"
	check_grep "failure names the tensor and where" "vis_block3.*at 197.*FAIL" \
		"$BIN/qvl-dump" --compare "$G/img_main.safetensors" "$TMP/perturbed.qvl"
	check "a looser tolerance passes" "$BIN/qvl-dump" --compare "$G/img_main.safetensors" --rtol 0.02 "$TMP/perturbed.qvl"
	check "--map compares under another name" "$BIN/qvl-dump" --compare "$G/img_main.safetensors" \
		--map vis_block3=vis_block3 --select vis_block3 --rtol 0.02 "$TMP/perturbed.qvl"
	check_fails "shape mismatch fails" 1 "$BIN/qvl-dump" --compare "$G/img_main.safetensors" \
		--map vis_block3=vis_block2 --map input_ids=gen_ids "$TMP/same.qvl"
	check "stream from stdin" sh -c "\"$BIN/qvl-dump\" < \"$TMP/same.qvl\" | grep -q 'input_ids	I64	\[142\]'"
	head -c 100 "$TMP/same.qvl" > "$TMP/cut.qvl"
	check_grep "stream cut mid-record" "record 0.*cut short" "$BIN/qvl-dump" "$TMP/cut.qvl"
	check_fails "stream cut mid-record exits 1" 1 "$BIN/qvl-dump" "$TMP/cut.qvl"

	# records x.1, x, x, inf: a repeat's .npy never takes a name another record has, and an
	# infinity in the reference matches only itself
	/usr/bin/python3 - "$TMP" <<'PY'
import json, struct, sys
import numpy as np
tmp = sys.argv[1]
def record(f, name, a):
    head = json.dumps({"name": name, "dtype": "F32", "shape": list(a.shape), "meta": {}}).encode()
    head += b" " * (-len(head) % 8)
    f.write(b"QVL1" + struct.pack("<I", len(head)) + head + a.tobytes())
with open(tmp + "/names.qvl", "wb") as f:
    for name, v in (("x.1", 1), ("x", 2), ("x", 3)):
        record(f, name, np.array([v], np.float32))
# names past a file name's 255 bytes, one cut inside a 3-byte character
with open(tmp + "/long.qvl", "wb") as f:
    for name, v in (("a" * 300, 1), ("a" * 300 + "b", 2), ("a" * 239 + "\u20ac" * 30, 3)):
        record(f, name, np.array([v], np.float32))
for name, v in (("inf_ref", [np.inf, 1, 2, 3]), ("inf_got", [5, 1, 2, 3])):
    with open(tmp + "/" + name + ".qvl", "wb") as f:
        record(f, "t", np.array(v, np.float32))
PY
	check "npy of repeated names" "$BIN/qvl-dump" --npy "$TMP/names" "$TMP/names.qvl"
	check "no .npy overwritten" /usr/bin/python3 -c "
import numpy as np
d = '$TMP/names/'
assert [np.load(d + n + '.npy')[0] for n in ('x.1', 'x', 'x.2')] == [1, 2, 3]"
	check "npy of names longer than a file name" "$BIN/qvl-dump" --npy "$TMP/long" "$TMP/long.qvl"
	check "long names cut to distinct files" /usr/bin/python3 -c "
import numpy as np
d = '$TMP/long/'
assert [np.load(d + n + '.npy')[0] for n in ('a' * 240, 'a' * 240 + '.1', 'a' * 239)] == [1, 2, 3]"
	cp "$TMP/names.qvl" "$TMP/<names>.qvl"
	check "a file name starting with < is a file, not stdin" sh -c \
		"cd \"$TMP\" && \"$BIN/qvl-dump\" '<names>.qvl' </dev/null | grep -q '	x.1	F32'"
	check_fails "an infinity in the reference is matched exactly" 1 "$BIN/qvl-dump" \
		--compare "$TMP/inf_ref.qvl" "$TMP/inf_got.qvl"
	check "and passes against itself" "$BIN/qvl-dump" --compare "$TMP/inf_ref.qvl" "$TMP/inf_ref.qvl"
	# ids: one token off fails whatever --rtol, and int64s past 2^53 are compared whole
	/usr/bin/python3 - "$TMP" <<'PY'
import json, struct, sys
import numpy as np
tmp = sys.argv[1]
for name, v in (("ids_ref", [44152, 151645, 2**53]), ("ids_got", [44153, 151645, 2**53]),
                ("big_got", [44152, 151645, 2**53 + 1])):
    a = np.array(v, np.int64)
    head = json.dumps({"name": "ids", "dtype": "I64", "shape": [3], "meta": {}}).encode()
    head += b" " * (-len(head) % 8)
    with open(tmp + "/" + name + ".qvl", "wb") as f:
        f.write(b"QVL1" + struct.pack("<I", len(head)) + head + a.tobytes())
PY
	check_fails "a different id fails" 1 "$BIN/qvl-dump" --compare "$TMP/ids_ref.qvl" "$TMP/ids_got.qvl"
	check_fails "int64 past 2^53 compared whole" 1 "$BIN/qvl-dump" --compare "$TMP/ids_ref.qvl" \
		"$TMP/big_got.qvl"
	check "ids equal pass" "$BIN/qvl-dump" --compare "$TMP/ids_ref.qvl" "$TMP/ids_ref.qvl"
fi
check_fails "selected name missing fails" 1 "$BIN/qvl-dump" --compare "$G/img_main.safetensors" --select nope "$G/img_main.safetensors"
echo "not a tensor file" > "$TMP/text.txt"
check_fails "text file is bad input" 1 "$BIN/qvl-dump" "$TMP/text.txt"
check_fails "missing file is bad input" 1 "$BIN/qvl-dump" "$TMP/missing"
check_fails "bad option is usage" 2 "$BIN/qvl-dump" --bogus
check_fails "bad number is usage" 2 "$BIN/qvl-dump" -n x "$G/img_main.safetensors"
# Every safetensors dtype (FP8 checkpoints, BOOL masks, unsigned ids) can be listed, shown,
# compared and exported; numpy checks the .npy files, the F8s against their definitions.
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	/usr/bin/python3 - "$TMP" <<'PY'
import json, struct, sys
import numpy as np
tmp = sys.argv[1]
b = np.arange(256, dtype=np.uint8)
def e4m3(v):
    s, e, m = v >> 7, (v >> 3) & 15, v & 7
    if e == 15 and m == 7: return np.nan
    x = m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -x if s else x
def e5m2(v):
    s, e, m = v >> 7, (v >> 2) & 31, v & 3
    if e == 31: x = np.inf if m == 0 else np.nan
    else: x = m * 2.0 ** -16 if e == 0 else (1 + m / 4) * 2.0 ** (e - 15)
    return -x if s else x
ts = {"bool": ("BOOL", np.array([1, 0, 1], np.uint8)),
      "u16": ("U16", np.array([0, 65535, 7], np.uint16)),
      "u32": ("U32", np.array([4294967295, 1], np.uint32)),
      "u64": ("U64", np.array([2**64 - 1, 2**64 - 2, 5], np.uint64)),
      "e4m3": ("F8_E4M3", b), "e5m2": ("F8_E5M2", b)}
head, data = {}, b""
for k, (dt, a) in ts.items():
    head[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [len(data), len(data) + a.nbytes]}
    data += a.tobytes()
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(tmp + "/dtypes.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
np.save(tmp + "/want_e4m3.npy", np.array([e4m3(int(v)) for v in b], np.float32))
np.save(tmp + "/want_e5m2.npy", np.array([e5m2(int(v)) for v in b], np.float32))
PY
	check_grep "BOOL, U16, U32, U64, F8_E4M3, F8_E5M2 are listed" "F8_E5M2	\[256\]" \
		"$BIN/qvl-dump" "$TMP/dtypes.safetensors"
	check_grep "F8_E4M3 shown as numbers" "0 0.001953125 0.00390625 " \
		"$BIN/qvl-dump" -n 3 --select e4m3 "$TMP/dtypes.safetensors"
	check_grep "F8_E4M3 stats: largest 448, two NaNs" "min -448  max 448.*nan 2" \
		"$BIN/qvl-dump" -s --select e4m3 "$TMP/dtypes.safetensors"
	check "a file of every dtype compares equal to itself" "$BIN/qvl-dump" --compare \
		"$TMP/dtypes.safetensors" "$TMP/dtypes.safetensors"
	check "every dtype exports to .npy" "$BIN/qvl-dump" --npy "$TMP/dtnpy" "$TMP/dtypes.safetensors"
	check "numpy reads them: values exact, F8s widened to float32" /usr/bin/python3 -c "
import numpy as np
d = '$TMP/dtnpy/'
assert np.load(d + 'bool.npy').tolist() == [True, False, True]
assert np.load(d + 'u16.npy').tolist() == [0, 65535, 7]
assert np.load(d + 'u32.npy').tolist() == [4294967295, 1]
assert np.load(d + 'u64.npy').tolist() == [2**64 - 1, 2**64 - 2, 5]
for k in ('e4m3', 'e5m2'):
    got, want = np.load(d + k + '.npy'), np.load('$TMP/want_' + k + '.npy')
    assert got.dtype == np.float32 and np.array_equal(got, want, equal_nan=True), k
"
fi

finish
