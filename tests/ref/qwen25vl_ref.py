#!/usr/bin/python3
"""qwen25vl_ref.py: an independent numpy port of the Qwen2.5-VL reference, to check qvl.

It follows Hugging Face transformers' modeling_qwen2_5_vl.py the reference's way, not qvl's:
the vision tower permutes the sequence into window order (get_window_index), runs dense
attention per cu_seqlens / cu_window_seqlens segment and un-permutes after the merger;
positions come from a port of get_rope_index; the decoder is recomputed with a KV cache and
M-RoPE split by mrope_section.  Compute is float32 on the exact BF16 weight values.

  qwen25vl_ref.py golden MODEL CASE.safetensors...
      run every golden case (pixel_values, grids, input_ids from the file) and print the
      largest |ref - golden| / max|golden| per tensor; exit 1 above --tol (1e-5), or when
      an integer tensor or a greedy id differs.
  qwen25vl_ref.py check MODEL --pixels PX --vit VIT --emb EMB --ids IDS --decode JSON
                  --logits LOGITS [--tol 1e-4]
      compare one qvl pipeline run with the reference: vision taps (block.K records of
      qvl-vit --tap), vit_hidden, image_embeds, the logits of every generated step
      (teacher-forced on qvl's own tokens) and the greedy ids where the reference's top-1 /
      top-2 gap is clearly above the tolerance.

Needs numpy only (Debian's /usr/bin/python3)."""
import json
import math
import os
import struct
import sys

import numpy as np

F32 = np.float32

# ---------------------------------------------------------------------------- file formats

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BF16": "<u2",
              "F64": "<f8", "I16": "<i2", "I8": "i1"}


def bf16_to_f32(u16):
    """BF16 bits are the high half of a float32."""
    return (np.asarray(u16, dtype=np.uint32) << 16).view(np.float32)


def _decode(dtype, shape, buf):
    if dtype not in _ST_DTYPES:
        raise ValueError("unknown dtype %s" % dtype)
    a = np.frombuffer(buf, dtype=_ST_DTYPES[dtype])
    if a.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError("payload size does not match shape %s" % (shape,))
    a = a.reshape(shape)
    return bf16_to_f32(a) if dtype == "BF16" else a


class SafeTensors:
    """A safetensors file: u64 LE header length, JSON header, data.  Tensors are read lazily."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > (100 << 20):
                raise ValueError("%s: header of %d bytes" % (path, n))
            self.header = json.loads(f.read(n))
        self.meta = self.header.pop("__metadata__", {}) or {}
        self.base = 8 + n
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")

    def names(self):
        return list(self.header)

    def get(self, name):
        e = self.header[name]
        a, b = e["data_offsets"]
        return _decode(e["dtype"], e["shape"], self.mm[self.base + a:self.base + b])


class Weights:
    """model.safetensors or the shards named by model.safetensors.index.json."""

    def __init__(self, model_dir):
        idx = os.path.join(model_dir, "model.safetensors.index.json")
        self.where = {}
        if os.path.exists(idx):
            files = {}
            for name, fn in json.load(open(idx))["weight_map"].items():
                if fn not in files:
                    files[fn] = SafeTensors(os.path.join(model_dir, fn))
                self.where[name] = files[fn]
        else:
            st = SafeTensors(os.path.join(model_dir, "model.safetensors"))
            self.where = {n: st for n in st.names()}
        self.cache = {}

    def __contains__(self, name):
        return name in self.where

    def __getitem__(self, name):
        if name not in self.cache:
            self.cache[name] = np.ascontiguousarray(self.where[name].get(name), dtype=F32)
        return self.cache[name]

    def rows(self, name, ids):
        """Rows of a (large) matrix without converting all of it."""
        st = self.where[name]
        e = st.header[name]
        a, b = e["data_offsets"]
        raw = np.frombuffer(st.mm[st.base + a:st.base + b], dtype=_ST_DTYPES[e["dtype"]])
        raw = raw.reshape(e["shape"])[np.asarray(ids)]
        return bf16_to_f32(raw) if e["dtype"] == "BF16" else raw.astype(F32)


def read_stream(path):
    """qvl-stream(5) records as (name, meta, array)."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        if data[off:off + 4] != b"QVL1":
            raise ValueError("%s: record %d: bad magic" % (path, len(out)))
        n = struct.unpack_from("<I", data, off + 4)[0]
        h = json.loads(data[off + 8:off + 8 + n])
        off += 8 + n
        size = int(np.prod(h["shape"], dtype=np.int64)) * np.dtype(_ST_DTYPES[h["dtype"]]).itemsize
        a = _decode(h["dtype"], h["shape"], data[off:off + size])
        off += size
        out.append((h["name"], h.get("meta") or {}, a))
    return out


# ---------------------------------------------------------------------------- building blocks

def rms_norm(x, w, eps):
    x = x.astype(F32)
    var = np.mean(x * x, axis=-1, keepdims=True, dtype=F32)
    return w * (x / np.sqrt(var + F32(eps)))


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def silu(x):
    return x / (F32(1) + np.exp(-x))


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x):
    """nn.GELU(): exact erf form (evaluated in double, rounded once)."""
    xd = x.astype(np.float64)
    return (0.5 * xd * (1.0 + _erf(xd / math.sqrt(2.0)).astype(np.float64))).astype(F32)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------- the model

class Model:
    def __init__(self, model_dir):
        self.dir = model_dir
        self.cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.vcfg = self.cfg["vision_config"]
        self.w = Weights(model_dir)
        c = self.cfg
        self.D = c["hidden_size"]
        self.H = c["num_attention_heads"]
        self.KV = c["num_key_value_heads"]
        self.hd = self.D // self.H
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 1e6)
        self.mrope_section = c["rope_scaling"]["mrope_section"]
        self.vocab = c["vocab_size"]
        self.tied = c.get("tie_word_embeddings", False)
        v = self.vcfg
        self.Dv = v["hidden_size"]
        self.Hv = v["num_heads"]
        self.sms = v.get("spatial_merge_size", 2)
        self.patch = v.get("patch_size", 14)
        self.window = v.get("window_size", 112)
        self.fullatt = set(v.get("fullatt_block_indexes", []))
        self.depth = v["depth"]
        self.tps = v.get("tokens_per_second", 2)
        self._lm_head = None

    # ------------------------------------------------------------------ vision tower

    def rot_pos_ids(self, grids):
        """(row, col) per patch in pixel_values order (merge units of sms x sms consecutive)."""
        s = self.sms
        out = []
        for t, h, w in grids:
            hpos = np.repeat(np.arange(h)[:, None], w, axis=1)
            wpos = np.repeat(np.arange(w)[None, :], h, axis=0)
            hpos = hpos.reshape(h // s, s, w // s, s).transpose(0, 2, 1, 3).reshape(-1)
            wpos = wpos.reshape(h // s, s, w // s, s).transpose(0, 2, 1, 3).reshape(-1)
            out.append(np.tile(np.stack([hpos, wpos], axis=-1), (t, 1)))
        return np.concatenate(out, axis=0).astype(np.int64)

    def window_index(self, grids):
        """HF get_window_index: window order -> merge unit, and cumulative window lengths."""
        s = self.sms
        vw = self.window // s // self.patch
        index, cu, base = [], [0], 0
        for t, h, w in grids:
            lh, lw = h // s, w // s
            idx = np.arange(t * lh * lw).reshape(t, lh, lw)
            ph, pw = vw - lh % vw, vw - lw % vw
            nh, nw = (lh + ph) // vw, (lw + pw) // vw
            pad = np.full((t, lh + ph, lw + pw), -100, dtype=np.int64)
            pad[:, :lh, :lw] = idx
            pad = pad.reshape(t, nh, vw, nw, vw).transpose(0, 1, 3, 2, 4).reshape(t, nh * nw, vw, vw)
            seqlens = (pad != -100).sum(axis=(2, 3)).reshape(-1)
            flat = pad.reshape(-1)
            index.append(flat[flat != -100] + base)
            cu.extend((np.cumsum(seqlens) * s * s + cu[-1]).tolist())
            base += t * lh * lw
        cu = np.asarray(cu, dtype=np.int64)
        keep = np.concatenate([[True], cu[1:] != cu[:-1]])     # unique_consecutive
        return np.concatenate(index), cu[keep]

    def vision_rope(self, pos):
        hd = self.Dv // self.Hv
        dim = hd // 2
        inv = F32(1) / (F32(10000.0) ** (np.arange(0, dim, 2, dtype=F32) / F32(dim)))
        freqs = pos.astype(F32)[:, :, None] * inv[None, None, :]    # [N, 2, hd/4]
        emb = freqs.reshape(len(pos), -1)
        emb = np.concatenate([emb, emb], axis=-1)
        return np.cos(emb), np.sin(emb)

    def vision_block(self, i, x, cu, cos, sin):
        w, p = self.w, "visual.blocks.%d." % i
        N, Dv, Hv = x.shape[0], self.Dv, self.Hv
        hd = Dv // Hv
        h = rms_norm(x, w[p + "norm1.weight"], 1e-6)
        qkv = linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).reshape(N, 3, Hv, hd)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]                   # [N, Hv, hd]
        q = q * cos[:, None, :] + rotate_half(q) * sin[:, None, :]
        k = k * cos[:, None, :] + rotate_half(k) * sin[:, None, :]
        out = np.empty((N, Hv, hd), dtype=F32)
        scale = F32(1.0 / math.sqrt(hd))
        for a, b in zip(cu[:-1], cu[1:]):
            qs, ks, vs = (t[a:b].transpose(1, 0, 2) for t in (q, k, v))
            att = softmax((qs @ ks.transpose(0, 2, 1)) * scale)
            out[a:b] = (att @ vs).transpose(1, 0, 2)
        x = x + linear(out.reshape(N, Dv), w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        h = rms_norm(x, w[p + "norm2.weight"], 1e-6)
        g = linear(h, w[p + "mlp.gate_proj.weight"], w[p + "mlp.gate_proj.bias"])
        u = linear(h, w[p + "mlp.up_proj.weight"], w[p + "mlp.up_proj.bias"])
        return x + linear(silu(g) * u, w[p + "mlp.down_proj.weight"], w[p + "mlp.down_proj.bias"])

    def vision(self, pixel_values, grids):
        """Returns a dict of the reference's intermediate tensors, in the original patch order."""
        w = self.w
        mu = self.sms * self.sms
        N = pixel_values.shape[0]
        if N != sum(t * h * w_ for t, h, w_ in grids):
            raise ValueError("pixel_values has %d rows, grids say otherwise" % N)
        pe = w["visual.patch_embed.proj.weight"].reshape(self.Dv, -1)
        x = pixel_values.astype(F32) @ pe.T
        r = {"patch_embed": x}
        pos = self.rot_pos_ids(grids)
        widx, cu_w = self.window_index(grids)
        seg = np.repeat([h * w_ for _, h, w_ in grids], [t for t, _, _ in grids])
        cu_full = np.concatenate([[0], np.cumsum(seg)]).astype(np.int64)
        r.update(rot_pos_ids=pos, window_index=widx, cu_window_seqlens=cu_w, cu_seqlens=cu_full)
        undo = np.argsort(widx)

        def to_window(a):
            return a.reshape(N // mu, mu, *a.shape[1:])[widx].reshape(a.shape)

        def to_orig(a):
            return a.reshape(N // mu, mu, *a.shape[1:])[undo].reshape(a.shape)

        x = to_window(x)
        cos, sin = self.vision_rope(to_window(pos))
        blocks = []
        for i in range(self.depth):
            x = self.vision_block(i, x, cu_full if i in self.fullatt else cu_w, cos, sin)
            blocks.append(to_orig(x))
        r["blocks"] = blocks
        ln = rms_norm(x, w["visual.merger.ln_q.weight"], 1e-6)
        r["ln_q"] = to_orig(ln)
        m = ln.reshape(N // mu, mu * self.Dv)
        m = gelu_erf(linear(m, w["visual.merger.mlp.0.weight"], w["visual.merger.mlp.0.bias"]))
        m = linear(m, w["visual.merger.mlp.2.weight"], w["visual.merger.mlp.2.bias"])
        r["embeds"] = m[undo]
        return r

    # ------------------------------------------------------------------ positions

    def rope_index(self, ids, image_grids, video_grids, second_per_grid_ts):
        """Port of get_rope_index for one sequence: position_ids [3, L], rope_delta."""
        c = self.cfg
        img, vid, vstart = c["image_token_id"], c["video_token_id"], c["vision_start_token_id"]
        ids = [int(i) for i in ids]
        L = len(ids)
        starts = [i for i in range(L - 1) if ids[i] == vstart]
        kinds = [ids[i + 1] for i in starts]
        n_img, n_vid = kinds.count(img), kinds.count(vid)
        parts, st, ii, vi = [], 0, 0, 0
        ri, rv = n_img, n_vid

        def nxt():
            return int(max(p.max() for p in parts)) + 1 if parts else 0

        for _ in range(n_img + n_vid):
            ed_i = ids.index(img, st) if (img in ids[st:] and ri > 0) else L + 1
            ed_v = ids.index(vid, st) if (vid in ids[st:] and rv > 0) else L + 1
            if ed_i < ed_v:
                t, h, w = image_grids[ii]
                spgt = F32(0.0)
                ii += 1
                ri -= 1
                ed = ed_i
            else:
                t, h, w = video_grids[vi]
                spgt = F32(second_per_grid_ts[vi]) if second_per_grid_ts is not None else F32(1.0)
                vi += 1
                rv -= 1
                ed = ed_v
            lt, lh, lw = t, h // self.sms, w // self.sms
            text = ed - st
            s0 = nxt()
            parts.append(np.tile(np.arange(text), (3, 1)) + s0)
            tt = (np.arange(lt, dtype=F32)[:, None] * spgt * F32(self.tps)).astype(np.int64)
            tt = np.repeat(tt, lh * lw, axis=1).reshape(-1)
            hh = np.tile(np.repeat(np.arange(lh), lw), lt)
            ww = np.tile(np.arange(lw), lt * lh)
            parts.append(np.stack([tt, hh, ww]) + text + s0)
            st = ed + lt * lh * lw
        if st < L:
            s0 = nxt()
            parts.append(np.tile(np.arange(L - st), (3, 1)) + s0)
        pos = np.concatenate(parts, axis=1).astype(np.int64)
        return pos, int(pos.max()) + 1 - L

    # ------------------------------------------------------------------ language model

    def embed(self, ids, image_embeds=None, video_embeds=None):
        ids = np.asarray(ids, dtype=np.int64)
        x = self.w.rows("model.embed_tokens.weight", ids).astype(F32)
        for tok, e in ((self.cfg["image_token_id"], image_embeds),
                       (self.cfg["video_token_id"], video_embeds)):
            rows = np.nonzero(ids == tok)[0]
            n = 0 if e is None else e.shape[0]
            if len(rows) != n:
                raise ValueError("%d pad tokens %d, embeddings rows %d" % (tok, len(rows), n))
            if n:
                x[rows] = e
        return x

    def mrope(self, pos):
        """cos, sin [n, head_dim] for positions [3, n], channel chunks by mrope_section."""
        hd = self.hd
        inv = F32(1) / (F32(self.theta) ** (np.arange(0, hd, 2, dtype=np.int64).astype(F32) / F32(hd)))
        freqs = pos.astype(F32)[:, :, None] * inv[None, None, :]    # [3, n, hd/2]
        emb = np.concatenate([freqs, freqs], axis=-1)               # [3, n, hd]
        sec = list(self.mrope_section) * 2
        if sum(sec) != hd:
            raise ValueError("mrope_section %s does not cover head_dim %d" % (self.mrope_section, hd))
        axis = np.concatenate([np.full(n, i % 3) for i, n in enumerate(sec)])
        sel = emb[axis, :, np.arange(hd)].T                          # [n, hd]
        return np.cos(sel), np.sin(sel)

    def new_cache(self):
        return [[np.zeros((self.KV, 0, self.hd), F32), np.zeros((self.KV, 0, self.hd), F32)]
                for _ in range(self.cfg["num_hidden_layers"])]

    def llm(self, x, pos, cache, resid=None):
        """Run n new tokens [n, D] at positions [3, n] after the cached ones; returns the
        last layer's output before the final norm.  resid, when a list, gets every layer's."""
        w, H, KV, hd = self.w, self.H, self.KV, self.hd
        n = x.shape[0]
        cos, sin = self.mrope(pos)
        past = cache[0][0].shape[1]
        mask = np.arange(past + n)[None, :] > (past + np.arange(n))[:, None]
        scale = F32(1.0 / math.sqrt(hd))
        if resid is not None:
            resid.append(x)
        for li, kv in enumerate(cache):
            p = "model.layers.%d." % li
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = linear(h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.q_proj.bias"])
            k = linear(h, w[p + "self_attn.k_proj.weight"], w[p + "self_attn.k_proj.bias"])
            v = linear(h, w[p + "self_attn.v_proj.weight"], w[p + "self_attn.v_proj.bias"])
            q = q.reshape(n, H, hd).transpose(1, 0, 2)
            k = k.reshape(n, KV, hd).transpose(1, 0, 2)
            v = v.reshape(n, KV, hd).transpose(1, 0, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            kv[0] = np.concatenate([kv[0], k], axis=1)
            kv[1] = np.concatenate([kv[1], v], axis=1)
            kk = np.repeat(kv[0], H // KV, axis=0)                  # repeat_kv: kv head g -> q heads g*(H/KV)..
            vv = np.repeat(kv[1], H // KV, axis=0)
            s = (q @ kk.transpose(0, 2, 1)) * scale
            s = np.where(mask[None], np.finfo(F32).min, s)
            o = (softmax(s) @ vv).transpose(1, 0, 2).reshape(n, H * hd)
            x = x + linear(o, w[p + "self_attn.o_proj.weight"])
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            g = linear(h, w[p + "mlp.gate_proj.weight"])
            u = linear(h, w[p + "mlp.up_proj.weight"])
            x = x + linear(silu(g) * u, w[p + "mlp.down_proj.weight"])
            if resid is not None:
                resid.append(x)
        return x

    def logits(self, last):
        """Final norm and lm_head (embed_tokens when tied) for one position [D]."""
        if self._lm_head is None:
            self._lm_head = self.w["model.embed_tokens.weight" if self.tied else "lm_head.weight"]
        h = rms_norm(last[None, :], self.w["model.norm.weight"], self.eps)[0]
        return h, self._lm_head @ h

    def generate(self, ids, image_embeds, video_embeds, pos, delta, steps, forced=None, resid=None):
        """Greedy decoding (or teacher-forced on `forced`): per step the logits it chose from,
        the ids and the decode positions."""
        cache = self.new_cache()
        x = self.llm(self.embed(ids, image_embeds, video_embeds), pos, cache, resid)
        hidden, lg = self.logits(x[-1])
        out_logits, out_ids, out_pos = [lg], [], []
        L = len(ids)
        for s in range(steps):
            tok = int(np.argmax(lg)) if forced is None else int(forced[s])
            out_ids.append(tok)
            if s == steps - 1:
                break
            p = L + s + delta
            out_pos.append(p)
            x = self.llm(self.embed([tok]), np.full((3, 1), p, dtype=np.int64), cache)
            _, lg = self.logits(x[-1])
            out_logits.append(lg)
        return {"logits": np.stack(out_logits), "ids": out_ids, "positions": out_pos,
                "hidden_last": hidden}


# ---------------------------------------------------------------------------- comparisons

class Report:
    def __init__(self, tol):
        self.tol, self.failed, self.rows = tol, 0, []

    def close(self, name, got, ref, tol=None):
        tol = self.tol if tol is None else tol
        got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            self.fail(name, "shape %s, reference %s" % (got.shape, ref.shape))
            return
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        d = float(np.abs(got - ref).max()) if ref.size else 0.0
        rel = d / scale if scale else d
        ok = rel <= tol
        self.failed += not ok
        self.rows.append((name, d, rel))
        print("%-4s %-28s max|d| %.3g  max|ref| %.3g  rel %.2e" % ("ok" if ok else "FAIL", name, d, scale, rel))

    def exact(self, name, got, ref):
        got, ref = np.asarray(got).reshape(-1), np.asarray(ref).reshape(-1)
        ok = got.shape == ref.shape and bool(np.all(got == ref))
        self.failed += not ok
        print("%-4s %-28s %s" % ("ok" if ok else "FAIL", name,
                                 "identical (%d values)" % got.size if ok else
                                 "differ: got %s want %s" % (got.tolist()[:24], ref.tolist()[:24])))

    def fail(self, name, why):
        self.failed += 1
        print("FAIL %-28s %s" % (name, why))

    def worst(self):
        return max((r[2] for r in self.rows), default=0.0)


def golden_case(model, path, rep):
    g = SafeTensors(path)
    t = {n: g.get(n) for n in g.names()}
    case = os.path.basename(path)[:-len(".safetensors")]
    print("== %s (%s)" % (case, model.dir))
    video = "pixel_values_videos" in t
    img_e = vid_e = None
    spgt = t.get("second_per_grid_ts")
    if "pixel_values" in t or video:
        pv = t["pixel_values_videos" if video else "pixel_values"]
        grids = [tuple(int(v) for v in r) for r in t["video_grid_thw" if video else "image_grid_thw"]]
        r = model.vision(pv, grids)
        rep.exact(case + " rot_pos_ids", r["rot_pos_ids"], t["vis_rot_pos_ids"])
        rep.exact(case + " window_index", r["window_index"], t["vis_window_index"])
        rep.exact(case + " cu_window_seqlens", r["cu_window_seqlens"], t["vis_cu_window_seqlens"])
        rep.exact(case + " cu_seqlens", r["cu_seqlens"], t["vis_cu_seqlens"])
        rep.close(case + " patch_embed", r["patch_embed"], t["vis_patch_embed"])
        for i, b in enumerate(r["blocks"]):
            rep.close(case + " vis_block%d" % i, b, t["vis_block%d" % i])
        rep.close(case + " merger_ln_q", r["ln_q"], t["vis_merger_ln_q"])
        ename = "video_embeds" if video else "image_embeds"
        rep.close(case + " " + ename, r["embeds"], t[ename])
        # Later stages start from the golden embeddings so that each stage is checked alone.
        if video:
            vid_e = t["video_embeds"]
        else:
            img_e = t["image_embeds"]
        igrids = [] if video else grids
        vgrids = grids if video else []
    else:
        igrids, vgrids = [], []
    ids = t["input_ids"]
    pos, delta = model.rope_index(ids, igrids, vgrids, spgt)
    rep.exact(case + " position_ids", pos, t["position_ids"])
    rep.exact(case + " rope_deltas", [delta], t["rope_deltas"])
    resid = []
    steps = len(t["gen_ids"])
    gen = model.generate(ids, img_e, vid_e, pos, delta, steps, resid=resid)
    for i, x in enumerate(resid):
        rep.close(case + " llm_resid%d" % i, x, t["llm_resid%d" % i])
    rep.close(case + " hidden_last", gen["hidden_last"], t["hidden_last"])
    rep.close(case + " logits_last", gen["logits"][0], t["logits_last"])
    rep.exact(case + " gen_ids", gen["ids"], t["gen_ids"])
    rep.exact(case + " gen_positions", gen["positions"], t["gen_positions"])
    top5 = np.take_along_axis(gen["logits"], t["gen_top5_ids"][:len(gen["logits"])], axis=1)
    rep.close(case + " gen_top5_logits", top5, t["gen_top5_logits"])


def cmd_golden(args):
    tol = 1e-5
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    model = Model(args[0])
    rep = Report(tol)
    for p in args[1:]:
        golden_case(model, p, rep)
    print("worst relative difference %.2e (tolerance %.0e)" % (rep.worst(), tol))
    print("%d failed" % rep.failed)
    return 1 if rep.failed else 0


def _opts(args, names):
    o = {}
    i = 1
    while i < len(args):
        if args[i] not in names or i + 1 >= len(args):
            sys.exit("qwen25vl_ref.py: bad option %s" % args[i])
        o[args[i][2:]] = args[i + 1]
        i += 2
    return o


def cmd_check(args):
    o = _opts(args, {"--pixels", "--vit", "--emb", "--ids", "--decode", "--logits", "--tol", "--gap"})
    tol = float(o.get("tol", 1e-4))
    model = Model(args[0])
    rep = Report(tol)
    recs = [r for r in read_stream(o["pixels"]) if r[0] in ("pixel_values", "pixel_values_videos")]
    # HF runs the images in one call of the vision tower and the videos in another.
    groups = {"image": [], "video": []}
    for name, meta, a in recs:
        kind = "video" if (meta.get("kind") == "video" or name == "pixel_values_videos") else "image"
        groups[kind].append((meta, a))
    order = [("video" if (m.get("kind") == "video" or n == "pixel_values_videos") else "image")
             for n, m, _ in recs]
    ref = {}
    for kind, items in groups.items():
        if items:
            grids = [tuple(m["grid_thw"]) for m, _ in items]
            ref[kind] = (model.vision(np.concatenate([a for _, a in items]), grids), grids, items)

    def in_stream_order(key):
        """The reference's per-kind results cut back into records, in stream order."""
        cut = {k: 0 for k in ref}
        out = []
        for kind in order:
            r, grids, items = ref[kind]
            i = cut[kind]
            cut[kind] += 1
            unit = 1 if key == "embeds" else model.sms ** 2
            row0 = sum(t * h * w for t, h, w in grids[:i]) // (model.sms ** 2) * unit
            n = grids[i][0] * grids[i][1] * grids[i][2] // (model.sms ** 2) * unit
            a = r[key] if key in ("embeds", "ln_q", "patch_embed") else r["blocks"][int(key)]
            out.append(a[row0:row0 + n])
        return out

    if recs:
        vit = read_stream(o["vit"])
        taps = {}
        for name, meta, a in vit:
            taps.setdefault(name, []).append(a)
        for name, arrs in sorted(taps.items()):
            if name.startswith("block."):
                k = int(name.split(".")[1])
                rep.close("vision " + name, np.concatenate(arrs), np.concatenate(in_stream_order(k)))
            elif name == "patch_embed":
                rep.close("vision patch_embed", np.concatenate(arrs), np.concatenate(in_stream_order("patch_embed")))
        rep.close("vit_hidden (block.%d)" % (model.depth - 1), np.concatenate(taps["vit_hidden"]),
                  np.concatenate(in_stream_order(model.depth - 1)))
        emb = [a for n, _, a in read_stream(o["emb"]) if n == "image_embeds"]
        rep.close("image_embeds", np.concatenate(emb), np.concatenate(in_stream_order("embeds")))
    # The language model runs on qvl's embeddings, so that it is checked alone.
    img_e = vid_e = None
    igrids, vgrids, spgts = [], [], []
    if recs:
        emb_recs = [(m, a) for n, m, a in read_stream(o["emb"]) if n == "image_embeds"]
        ie = [a for (m, a), k in zip(emb_recs, order) if k == "image"]
        ve = [a for (m, a), k in zip(emb_recs, order) if k == "video"]
        img_e = np.concatenate(ie) if ie else None
        vid_e = np.concatenate(ve) if ve else None
        igrids = [tuple(m["grid_thw"]) for (m, _), k in zip(emb_recs, order) if k == "image"]
        vgrids = [tuple(m["grid_thw"]) for (m, _), k in zip(emb_recs, order) if k == "video"]
        spgts = [m.get("second_per_grid_t", 1.0) for (m, _), k in zip(emb_recs, order) if k == "video"]
    ids = [int(s) for s in open(o["ids"]).read().split()]
    pos, delta = model.rope_index(ids, igrids, vgrids, spgts)
    res = json.load(open(o["decode"]))
    toks = res["tokens"]
    lg = [a for n, _, a in read_stream(o["logits"]) if n == "logits"][0]
    if lg.shape[0] != len(toks):
        rep.fail("logits rows", "%d rows for %d tokens" % (lg.shape[0], len(toks)))
        return 1
    gen = model.generate(ids, img_e, vid_e, pos, delta, len(toks), forced=toks)
    print("     prompt %d tokens, rope_delta %d, positions t %d..%d h ..%d w ..%d" % (
        len(ids), delta, pos[0].min(), pos[0].max(), pos[1].max(), pos[2].max()))
    rep.close("logits step 0 (prefill last)", lg[0], gen["logits"][0])
    for s in range(1, len(toks)):
        rep.close("logits step %d" % s, lg[s], gen["logits"][s])
    # Greedy ids: qvl's choice must be the reference's argmax unless the top two are within
    # twice the tolerance of each other (then either is a correct float32 answer).
    gap_tol = float(o.get("gap", 2 * tol))
    free = 0
    for s, tok in enumerate(toks):
        r = gen["logits"][s]
        top = np.argsort(r)[::-1][:2]
        scale = float(np.abs(r).max())
        gap = float(r[top[0]] - r[top[1]])
        if tok == int(top[0]):
            free += 1
        elif gap <= gap_tol * scale and r[tok] >= r[top[0]] - gap_tol * scale:
            print("note step %d: qvl chose %d, reference %d, within the tie band (gap %.2g)" %
                  (s, tok, top[0], gap))
        else:
            rep.fail("greedy id step %d" % s, "qvl %d, reference argmax %d (gap %.3g, max|logit| %.3g)" %
                     (tok, top[0], gap, scale))
    print("ok   greedy ids: %d/%d equal to the reference's argmax" % (free, len(toks)))
    print("worst relative difference %.2e (tolerance %.0e)" % (rep.worst(), tol))
    print("%d failed" % rep.failed)
    return 1 if rep.failed else 0


def main():
    a = sys.argv[1:]
    if not a or a[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if a[0] == "golden":
        return cmd_golden(a[1:])
    if a[0] == "check":
        return cmd_check(a[1:])
    sys.exit("qwen25vl_ref.py: unknown command %s" % a[0])


if __name__ == "__main__":
    sys.exit(main())
