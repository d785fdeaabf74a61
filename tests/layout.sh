#!/usr/bin/env bash
# tests/layout.sh: checkpoints saved by transformers 4.52 and later name the vision tower
# model.visual.* and the text model model.language_model.* (lm_head stays), and
# transformers 5 writes the text model's config under text_config with rope_theta and
# mrope_section in rope_parameters.  Both test models rewritten that way, and sharded as the
# hub does, give the same bytes in every program, quantized or not.  Checkpoints quantized by other tools are refused by name.
source "$(dirname "$0")/lib.sh"

relayout() { # model dir -> new-layout sharded copy
	mkdir -p "$2" && cp "$1"/*.json "$1"/*.txt "$2"/ 2>/dev/null
	rm -f "$2/model.safetensors.index.json"
	/usr/bin/python3 - "$1/model.safetensors" "$2" <<'PY'
import json, re, struct, sys
src, out = sys.argv[1], sys.argv[2]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
head = json.loads(b[8:8 + n])
meta = head.pop('__metadata__', None)
def rename(k):
    if k.startswith('visual.'):
        return 'model.' + k
    return re.sub(r'^model\.', 'model.language_model.', k)
names = sorted(head)
shards = [names[1::2], names[0::2]]
index = {}
for i, part in enumerate(shards):
    fn = 'model-%05d-of-00002.safetensors' % (i + 1)
    h, data, off = {}, b'', 0
    for k in part:
        t = head[k]
        s, e = t['data_offsets']
        h[rename(k)] = {'dtype': t['dtype'], 'shape': t['shape'], 'data_offsets': [off, off + e - s]}
        data += b[8 + n + s:8 + n + e]
        off += e - s
        index[rename(k)] = fn
    if meta:
        h['__metadata__'] = meta
    hj = json.dumps(h).encode()
    hj += b' ' * (-len(hj) % 8)
    open(out + '/' + fn, 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
json.dump({'metadata': {}, 'weight_map': index}, open(out + '/model.safetensors.index.json', 'w'))
cfg = json.load(open(out + '/config.json'))
keep = ('architectures', 'model_type', 'vision_config', 'bos_token_id', 'eos_token_id',
        'image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id',
        'vision_token_id', 'tie_word_embeddings', 'transformers_version')
text = {k: v for k, v in cfg.items() if k not in keep}
rope = text.pop('rope_scaling')
text['rope_parameters'] = {'rope_type': 'default', 'rope_theta': text.pop('rope_theta'),
                           'mrope_section': rope['mrope_section']}
text['model_type'] = 'qwen2_5_vl_text'
cfg = {k: v for k, v in cfg.items() if k in keep}
cfg['text_config'] = text
json.dump(cfg, open(out + '/config.json', 'w'), indent=2)
PY
}

"$BIN/qvl-resize" --max-pixels 60000 examples/docs/letter.png > "$TMP/img.qvl" ||
	echo "FAIL resize"
for m in tiny untied; do
	src=$DATA/models/$m new=$TMP/$m-new
	check "$m rewritten in the new layout" relayout "$src" "$new"
	check_grep "$m: no name of the old layout left" 'model.language_model.layers.0' \
		"$BIN/qvl-dump" "$new"
	check_grep "$m: config in transformers 5's form" '"rope_parameters"' cat "$new/config.json"
	for d in "$src" "$new"; do
		tag=${d##*/}
		check "$m: vit + merge ($tag)" sh -c "'$BIN/qvl-vit' -m '$d' '$TMP/img.qvl' |
		    '$BIN/qvl-merge' -m '$d' > '$TMP/$tag.emb'"
		check "$m: decode ($tag)" sh -c "'$BIN/qvl-decode' -m '$d' --json --max-tokens 8 \
		    -p 'Read it. <image>' '$TMP/$tag.emb' > '$TMP/$tag.json'"
		check "$m: quantize ($tag)" "$BIN/qvl-quantize" -q -m "$d" --type q8 -o "$TMP/$tag-q8"
		check "$m: decode q8 ($tag)" sh -c "'$BIN/qvl-decode' -m '$TMP/$tag-q8' --json \
		    --max-tokens 8 -p 'Read it. <image>' '$TMP/$tag.emb' > '$TMP/$tag-q8.json'"
	done
	check "$m: same image embeddings" cmp "$TMP/$m.emb" "$TMP/$m-new.emb"
	answer() { grep -o '"text":"[^"]*","tokens":\[[^]]*\]' "$1"; }
	check "$m: same answer" cmp <(answer "$TMP/$m.json") <(answer "$TMP/$m-new.json")
	check "$m: same q8 answer" cmp <(answer "$TMP/$m-q8.json") <(answer "$TMP/$m-new-q8.json")
	check "$m: answers not empty" test -n "$(answer "$TMP/$m.json")"
done

# transformers 5 writes the image processor's settings into processor_config.json (under
# "image_processor") and no preprocessor_config.json
mkdir -p "$TMP/pp-old" "$TMP/pp-new"
/usr/bin/python3 - "$DATA/models/tiny/preprocessor_config.json" "$TMP" <<'PY'
import json, sys
pp = json.load(open(sys.argv[1]))
pp['max_pixels'] = 50000
json.dump(pp, open(sys.argv[2] + '/pp-old/preprocessor_config.json', 'w'))
json.dump({'image_processor': pp, 'processor_class': 'Qwen2_5_VLProcessor'},
          open(sys.argv[2] + '/pp-new/processor_config.json', 'w'))
PY
info() { "$BIN/qvl-resize" --info -m "$1" examples/docs/letter.png; }
check "processor_config.json's image_processor is read" cmp <(info "$TMP/pp-old") \
	<(info "$TMP/pp-new")
check "and its max_pixels used" sh -c "'$BIN/qvl-resize' --info -m '$TMP/pp-new' \
	examples/docs/letter.png | grep -q 'resized_size.:.168,252.'"
# transformers 4.5x saves min_pixels/max_pixels and size (shortest_edge/longest_edge) both;
# its image processors, and transformers 5's, let min_pixels and max_pixels override size,
# so a max_pixels edited by hand counts even where size still has the saved value
/usr/bin/python3 - "$TMP/pp-old/preprocessor_config.json" <<'PY'
import json, sys
pp = json.load(open(sys.argv[1]))
pp['size'] = {'shortest_edge': 3136, 'longest_edge': 12845056}
json.dump(pp, open(sys.argv[1], 'w'))
PY
check "max_pixels overrides a stale size.longest_edge" sh -c "'$BIN/qvl-resize' --info \
	-m '$TMP/pp-old' examples/docs/letter.png | grep -q 'resized_size.:.168,252.'"
echo '{"processor_class": "x"}' > "$TMP/pp-new/processor_config.json"
check_stderr "a processor_config.json without one is an error" 1 \
	'processor_config.json: no image_processor object' info "$TMP/pp-new"
echo '{"image_processor": null}' > "$TMP/pp-new/processor_config.json"
check_stderr "nor is a null one" 1 'processor_config.json: no image_processor object' \
	info "$TMP/pp-new"

# YaRN (or any rotary type but the default/mrope one) changes every position's frequencies
# in transformers (ROPE_INIT_FUNCTIONS[rope_type]); the Qwen2.5-VL model card suggests adding
# it to config.json for long inputs.  The language model refuses it by name in both layouts
# instead of running default RoPE; the vision tower, whose positions are its own, still runs.
for form in old new; do
	mkdir -p "$TMP/yarn-$form" && cp "$DATA"/models/tiny/* "$TMP/yarn-$form"/
	/usr/bin/python3 - "$TMP/yarn-$form/config.json" $form <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
yarn = {'factor': 4, 'original_max_position_embeddings': 32768, 'mrope_section': [2, 3, 3]}
if sys.argv[2] == 'old':
    cfg['rope_scaling'] = dict(yarn, type='yarn')
else:
    del cfg['rope_scaling']
    cfg['rope_parameters'] = dict(yarn, rope_type='yarn', rope_theta=cfg.pop('rope_theta'))
json.dump(cfg, open(sys.argv[1], 'w'))
PY
done
check_stderr "rope_scaling type yarn is refused" 1 'rope_scaling.type is "yarn"' \
	"$BIN/qvl-decode" -m "$TMP/yarn-old" --text-only -p hi --max-tokens 1
check_stderr "rope_parameters rope_type yarn is refused" 1 'rope_parameters.rope_type is "yarn"' \
	"$BIN/qvl-decode" -m "$TMP/yarn-new" --text-only -p hi --max-tokens 1
check "the vision tower runs on a yarn config" sh -c "'$BIN/qvl-vit' -m '$TMP/yarn-old' \
	'$TMP/img.qvl' | '$BIN/qvl-merge' -m '$TMP/yarn-old' | cmp - '$TMP/tiny.emb'"

# A fine-tune's own chat template (chat_template.jinja first, as transformers 5 saves it)
# is compared with Qwen2.5-VL's, which qvl writes out: a different one is said, the same
# one (a .jinja with a final newline, a named list in tokenizer_config.json) is not.
for t in same other listed; do
	mkdir -p "$TMP/tmpl-$t" && ln -s "$DATA"/models/tiny/* "$TMP/tmpl-$t"/
done
/usr/bin/python3 - "$DATA/models/tiny/chat_template.json" "$TMP" <<'PY'
import json, os, sys
t = json.load(open(sys.argv[1]))['chat_template']
d = sys.argv[2]
open(d + '/tmpl-same/chat_template.jinja', 'w').write(t + '\n')
open(d + '/tmpl-other/chat_template.jinja', 'w').write(t.replace('You are a helpful assistant.', 'Be brief.'))
cfg = json.load(open(d + '/tmpl-listed/tokenizer_config.json'))
cfg['chat_template'] = [{'name': 'tool_use', 'template': 'x'}, {'name': 'default', 'template': t}]
for f in ('tokenizer_config.json', 'chat_template.json'):
    os.remove(d + '/tmpl-listed/' + f)
json.dump(cfg, open(d + '/tmpl-listed/tokenizer_config.json', 'w'))
PY
check_stderr "Qwen2.5-VL's template in a .jinja: no warning" 0 '' \
	"$BIN/qvl-decode" -m "$TMP/tmpl-same" --text-only -p hi --max-tokens 1
check_stderr "a fine-tune's own template is said" 0 \
	"tmpl-other/chat_template.jinja: the model's chat template differs from the one qvl writes" \
	"$BIN/qvl-decode" -m "$TMP/tmpl-other" --text-only -p hi --max-tokens 1
check_stderr "a named list's default template: no warning" 0 '' \
	"$BIN/qvl-decode" -m "$TMP/tmpl-listed" --text-only -p hi --max-tokens 1

# Another quantizer's checkpoints: GPTQ/AWQ packed int32 (q_proj.qweight, .qzeros, .scales),
# FP8 (F8_E4M3 weights and a weight_scale) and bitsandbytes 4-bit (U8 weights, .absmax)
/usr/bin/python3 - "$DATA/models/tiny/model.safetensors" "$TMP" <<'PY'
import json, struct, sys
src, tmp = sys.argv[1], sys.argv[2]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
head = json.loads(b[8:8 + n])
head.pop('__metadata__', None)
def write(path, tensors):
    h, data = {}, b''
    for k, (dt, shape, raw) in sorted(tensors.items()):
        h[k] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    hj = json.dumps(h).encode()
    hj += b' ' * (-len(hj) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
orig = {k: (t['dtype'], t['shape'], b[8 + n + t['data_offsets'][0]:8 + n + t['data_offsets'][1]])
        for k, t in head.items()}
gptq, fp8, bnb = dict(orig), dict(orig), dict(orig)
for k, (dt, shape, raw) in orig.items():
    if k.startswith('model.layers.') and k.endswith('proj.weight'):
        rows, cols = shape
        stem = k[:-len('weight')]
        del gptq[k]
        gptq[stem + 'qweight'] = ('I32', [cols // 8, rows], bytes(rows * cols // 2))
        gptq[stem + 'scales'] = ('F16', [1, rows], bytes(2 * rows))
        fp8[k] = ('F8_E4M3', shape, bytes(rows * cols))
        fp8[stem + 'weight_scale'] = ('F32', [rows, 1], bytes(4 * rows))
        bnb[k] = ('U8', [rows * cols // 2, 1], bytes(rows * cols // 2))
        bnb[k + '.absmax'] = ('F32', [rows * cols // 64], bytes(4 * (rows * cols // 64)))
write(tmp + '/gptq.safetensors', gptq)
write(tmp + '/fp8.safetensors', fp8)
write(tmp + '/bnb.safetensors', bnb)
PY
for q in gptq fp8 bnb; do
	mkdir -p "$TMP/$q" && cp "$DATA"/models/tiny/*.json "$TMP/$q"/
	mv "$TMP/$q.safetensors" "$TMP/$q/model.safetensors"
done
check_stderr "a GPTQ/AWQ checkpoint is refused by name" 1 \
	'q_proj.weight: its matrices were packed by another quantizer' \
	"$BIN/qvl-decode" -m "$TMP/gptq" --text-only -p hi --max-tokens 1
check_stderr "an FP8 checkpoint is refused by name" 1 \
	'dtype F8_E4M3 \(an FP8 checkpoint\), want BF16' \
	"$BIN/qvl-decode" -m "$TMP/fp8" --text-only -p hi --max-tokens 1
check_stderr "a bitsandbytes checkpoint is refused by name" 1 \
	'dtype U8 \(a bitsandbytes checkpoint\), want BF16' \
	"$BIN/qvl-decode" -m "$TMP/bnb" --text-only -p hi --max-tokens 1
finish
