#!/usr/bin/env python3
"""quant_bound.py MODEL GOLDEN [--trials N]: how weight errors reach the logits of a model,
and what that asks of a quantized format (qvl-quantize(1), Quality).

Independent Gaussian noise of 1 % of each matrix's RMS is added to every matrix the LLM
multiplies by (the lm_head too, not the embedding lookup), and the logits over the golden
prompt's positions are compared with the clean model's.  The ratio of the two relative RMS
errors, the amplification A, turns a logits target T into a weight target T / A, and that
into bits: coding iid Gaussian values to relative RMS error e takes log2(1 / e) bits a value
at the rate-distortion limit, and a quarter bit more for a scalar code.

Prints one line per target, e.g.
  amplification 3.59 (3.34 .. 3.87 over 8 trials)
  logits 1 %: weights 0.28 %, 8.49 bits at the limit, 8.74 scalar
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen25vl_ref import F32, Model, SafeTensors, rms_norm  # noqa: E402


def all_logits(model, ids, pos):
    x = model.llm(model.embed(ids), pos, model.new_cache())
    h = rms_norm(x, model.w["model.norm.weight"], model.eps)
    return h.astype(np.float64) @ model._lm_head.T.astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("golden")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.01)
    a = ap.parse_args()

    m = Model(a.model)
    g = SafeTensors(a.golden)
    ids, pos = g.get("input_ids"), g.get("position_ids")
    m._lm_head = m.w["model.embed_tokens.weight" if m.tied else "lm_head.weight"]
    matrices = [n for n in m.w.where
                if n.startswith("model.layers.") and n.endswith("_proj.weight")]
    clean = {n: m.w[n] for n in matrices}
    head = m._lm_head
    ref = all_logits(m, ids, pos)
    rng = np.random.default_rng(20261128)
    amp = []
    for _ in range(a.trials):
        for n, w in clean.items():
            rms = math.sqrt(float(np.mean(w.astype(np.float64) ** 2)))
            m.w.cache[n] = (w + rng.standard_normal(w.shape) * a.noise * rms).astype(F32)
        rms = math.sqrt(float(np.mean(head.astype(np.float64) ** 2)))
        m._lm_head = (head + rng.standard_normal(head.shape) * a.noise * rms).astype(F32)
        got = all_logits(m, ids, pos)
        amp.append(math.sqrt(np.sum((got - ref) ** 2) / np.sum(ref ** 2)) / a.noise)
    A = sum(amp) / len(amp)
    print("amplification %.2f (%.2f .. %.2f over %d trials, %d matrices and the lm_head)"
          % (A, min(amp), max(amp), len(amp), len(matrices)))
    for target in (0.01, 0.05):
        e = target / A
        bits = math.log2(1 / e)
        print("logits %g %%: weights %.2f %%, %.2f bits at the limit, %.2f scalar"
              % (target * 100, e * 100, bits, bits + 0.25))


if __name__ == "__main__":
    main()
