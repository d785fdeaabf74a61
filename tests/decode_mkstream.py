#!/usr/bin/python3
# decode_mkstream.py GOLDEN.safetensors OUT: writes the golden case's image/video embeddings as
# a qvl stream of image_embeds records (one per image, in prompt order), as qvl-merge would.
# decode_mkstream.py --ints GOLDEN.safetensors NAME: prints an integer tensor (input_ids,
# gen_ids), space-separated; --meta GOLDEN KEY prints a __metadata__ value.
# Standard library only.
import json, struct, sys

def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__', {})
    def get(name):
        if name not in h:
            return None
        v = h[name]
        s, e = v['data_offsets']
        return v['dtype'], v['shape'], b[8 + n + s:8 + n + e]
    return meta, get

def record(name, shape, payload, meta):
    hdr = json.dumps({'name': name, 'dtype': 'F32', 'shape': shape, 'meta': meta}).encode()
    hdr += b' ' * ((-(8 + len(hdr))) % 8)
    return b'QVL1' + struct.pack('<I', len(hdr)) + hdr + payload

if sys.argv[1] == '--ints':
    _, get = load(sys.argv[2])
    dt, shape, raw = get(sys.argv[3])
    fmt = {'I64': 'q', 'I32': 'i'}[dt]
    print(' '.join(str(x) for x in struct.unpack('<%d%s' % (len(raw) // struct.calcsize(fmt), fmt), raw)))
    sys.exit(0)
if sys.argv[1] == '--meta':
    meta, _ = load(sys.argv[2])
    print(meta[sys.argv[3]])
    sys.exit(0)
meta, get = load(sys.argv[1])
out = bytearray()
# a record that is not ours, to check it is ignored
out += record('note', [1], struct.pack('<f', 1.0), {'source': 'ignored'})
items = []
for kind in ('image', 'video'):
    g = get(kind + '_grid_thw')
    if g is None:
        continue
    _, gshape, graw = g
    grids = [struct.unpack('<3q', graw[24 * i:24 * i + 24]) for i in range(gshape[0])]
    _, eshape, eraw = get(kind + '_embeds')
    width = eshape[1]
    row = 0
    spgt = None
    if kind == 'video':
        spgt = struct.unpack('<f', get('second_per_grid_ts')[2][:4])[0]
    for k, (t, hh, ww) in enumerate(grids):
        rows = t * hh * ww // 4
        m = {'source': '%s%d' % (kind, k), 'grid_thw': [t, hh, ww], 'kind': kind}
        if spgt is not None:
            m['second_per_grid_t'] = spgt
            m['fps'] = 2.0 / spgt
        items.append(record('image_embeds', [rows, width], eraw[4 * width * row:4 * width * (row + rows)], m))
        row += rows
# all goldens hold images or one video, never both: stream order = prompt order
for it in items:
    out += it
open(sys.argv[2], 'wb').write(out)
