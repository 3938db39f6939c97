#!/usr/bin/python3
"""Golden reference of one training step (loss and every parameter gradient)
for dllm's training tests.

How to run (from the repository root; needs numpy and torch, which Debian's
/usr/bin/python3 has, and nothing else):

    /usr/bin/python3 scripts/make_train_golden.py           # regenerate tests/golden_train/
    /usr/bin/python3 scripts/make_train_golden.py --check   # verify tests/golden_train/

The models are the tiny LLaDA checkpoints written by scripts/make_golden.py
(tests/golden/llada_untied_f32 and tests/golden/llada_tied_f32); this script
reuses that script's safetensors reader/writer and its mapping of published
tensor names (make_golden.unify), and runs the same LLaDA forward (LLaDA-8B's
modeling_llada.py: RMSNorm, rotate-half RoPE, SwiGLU, no biases, logits =
ln_f(x) @ head^T) batched, in torch float64, with requires_grad on every
weight tensor so autograd gives the gradients.

Regeneration writes, for every case in CASES, a folder tests/golden_train/<case>/
holding

    case.json          {"model": "<folder under tests/golden>",
                        "objective": "mdm" | "mdm-sft" | "ar",
                        "ids":  [[B x T ints]],          x0, the clean tokens
                        "mask": [[B x T 0/1]],           (mdm, mdm-sft only)
                        "p":    [B floats],              (mdm, mdm-sft only)
                        "prompt_len": [B ints],          (mdm-sft only)
                        "block_size": n,                 (bd only)
                        "block_p": [[B x ceil(T/n) floats]], (bd only; no "p")
                        "loss": float64 loss, 17 significant digits}
    grads.safetensors  d loss / d w for every tensor of model.safetensors,
                       same names and shapes, dtype F32 (rounded from the
                       float64 gradients)

Objectives (B sequences of length T; CE(l, y) = -log_softmax(l)[y] over the
full vocabulary, float64 here):

* "mdm" -- LLaDA pre-training loss (Nie et al., "Large Language Diffusion
  Models", 2025, Eq. 3 / Algorithm 1; GSAI-ML/LLaDA GUIDELINES.md
  forward_process + pre-training loss):
      xt   = where(M, mask_token_id, x0)
      l    = model(xt)                      bidirectional attention
      loss = sum_{b,t: M[b,t]=1} CE(l[b,t], x0[b,t]) / p[b]   / (B*T)
* "mdm-sft" -- LLaDA SFT loss (same paper, Eq. 5 / Algorithm 2; GUIDELINES.md
  SFT section).  M is 0 on the prompt (t < prompt_len[b]); the answer is
  padded with EOS up to T and the padding counts as answer, so the answer
  length is L_b = T - prompt_len[b]:
      loss = (1/B) * sum_b sum_{t: M[b,t]=1} CE(l[b,t], x0[b,t]) / (p[b] * L_b)
* "ar" -- standard autoregressive next-token loss, same weights run with
  causal attention (query i attends keys j <= i), no masking, input x0:
      loss = mean_{b, t in [0, T-2]} CE(l[b,t], x0[b,t+1])
* "bd" -- BD3-LM block diffusion (Arriola et al., ICLR 2025, "Block
  Diffusion", Sec. 3 and the vectorised training of its Appendix; blocks of
  n = block_size, block k = positions [k n, (k+1) n), the last one short),
  the same weights run as a block-diffusion model.  Each block k of
  sequence b has its own masking probability p[b][k] ("block_p"), M marks
  the masked positions, xt = where(M, mask_token_id, x0).  ONE forward over
  the 2T tokens [xt ; x0], both halves at RoPE positions 0..T-1, with the
  attention mask M_BD | M_OBC | M_BC of the paper: a noisy query of block k
  sees the noisy keys of block k (block diagonal), and the clean keys of
  blocks < k (offset block-causal); a clean query of block k sees the clean
  keys of blocks <= k (block-causal); clean queries never see noisy keys.
      l    = model([xt ; x0])[:, :T]        the logits of the noisy half
      loss = sum_{b,t: M[b,t]=1} CE(l[b,t], x0[b,t]) / p[b][t // n]   / (B*T)
  --check also runs, for every block k, the plain block-causal model on
  x0[:k n] + xt[k n : (k+1) n] (a loop implementation) and asserts its
  last-block logits equal the vectorised ones: the identity the mask rests on.

For the tied checkpoint (weight_tying true) the single tensor
model.transformer.wte.weight is both the input embedding and the output head;
it is one autograd leaf used in both places, so its gradient is the sum of the
scatter-add of the input-side gradient into the rows of the input tokens and
the full [V, d] output-head gradient (dlogits^T @ ln_f(x)).

--check re-reads every case.json and grads.safetensors and
  1. recomputes loss and gradients and compares them with the stored values;
  2. cross-checks the batched forward: bidirectional logits of each row
     against make_golden.forward_torch (the already-verified per-sequence
     reference) and against forward_numpy_loop (a loop-based numpy forward
     written here); for "ar" also the causal logits against
     forward_numpy_loop(causal=True), and that running a prefix ids[:t+1]
     causally reproduces the first t+1 rows (no look-ahead);
  3. recomputes each loss with a second, independently written formula
     (torch.nn.functional.cross_entropy with weights / a gather loop);
  4. finite differences: central differences in float64, eps 1e-6, on a few
     random coordinates (plus the largest-|grad| coordinate) of every tensor,
     printing the max relative error per case;
  5. prints how far a float32 evaluation of the same step lands from the
     float64 reference (loss and gradients), the tolerance a float32 engine
     should expect.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402  (safetensors I/O, unify, forward_torch)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "tests", "golden")
OUT_DIR = os.path.join(ROOT, "tests", "golden_train")

B, T = 2, 9

CASES = [
    dict(name="llada_untied_mdm", model="llada_untied_f32", objective="mdm",
         seed=7001, p=[0.3, 0.75]),
    dict(name="llada_untied_mdm_sft", model="llada_untied_f32",
         objective="mdm-sft", seed=7002, p=[0.75, 0.3], prompt_len=[3, 5],
         answer_len=[4, 2]),            # answer tokens before the EOS padding
    dict(name="llada_untied_ar", model="llada_untied_f32", objective="ar",
         seed=7003),
    dict(name="llada_tied_mdm", model="llada_tied_f32", objective="mdm",
         seed=7004, p=[0.3, 0.75]),
    # Blocks of 4 over T = 9: two full blocks and a short one.
    dict(name="llada_untied_bd", model="llada_untied_f32", objective="bd",
         seed=7005, block_size=4, block_p=[[0.3, 0.8, 0.55], [0.9, 0.25, 0.6]]),
]


# ------------------------------------------------------------------ model --

def load_model(name):
    folder = os.path.join(MODEL_DIR, name)
    with open(os.path.join(folder, "config.json")) as fh:
        cfg = json.load(fh)
    w, dtypes = mg.read_safetensors(os.path.join(folder, "model.safetensors"))
    assert set(dtypes.values()) == {"F32"}, dtypes
    assert cfg["model_type"] == "llada"
    return cfg, w


def leaves(w, dtype):
    """name -> leaf tensor (requires_grad) holding the stored values exactly."""
    return {k: torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype).requires_grad_(True)
            for k, a in w.items()}


def forward_batched(cfg, P, ids, causal, positions=None, allowed=None):
    """Logits [B, T, V] for ids [B, T] (LongTensor); P: name -> torch tensor.
    Same model as make_golden.forward_torch, batched, autograd-friendly.
    positions: RoPE position of each of the T tokens (default 0..T-1);
    allowed: [T(query), T(key)] bool, True = may attend (default: all, or
    causal)."""
    hp, m = mg.unify(cfg, P)          # only looks tensors up by name
    dtype = m["embed"].dtype
    Bn, Tn = ids.shape
    H, KV = hp["heads"], hp["kv_heads"]
    hd = hp["d"] // H
    group = H // KV
    half = hd // 2

    def rms(x, g):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + hp["eps"]) * g

    inv_freq = 1.0 / (hp["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    pos = (torch.arange(Tn, dtype=torch.float64) if positions is None
           else torch.tensor(positions, dtype=torch.float64))
    ang = pos[:, None] * inv_freq[None, :]
    ang = torch.cat([ang, ang], dim=-1)                          # [T, hd]
    cos, sin = ang.cos().to(dtype), ang.sin().to(dtype)

    def rope(x):                                                 # [B, H, T, hd]
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    future = torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), diagonal=1)  # key j > query i

    x = m["embed"][ids]                                          # [B, T, d]
    for L in m["layers"]:
        n = rms(x, L["attn_norm"])
        q = (n @ L["wq"].T).view(Bn, Tn, H, hd).transpose(1, 2)
        k = (n @ L["wk"].T).view(Bn, Tn, KV, hd).transpose(1, 2)
        v = (n @ L["wv"].T).view(Bn, Tn, KV, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)            # [B, H, T, T]
        if causal:
            s = s.masked_fill(future, float("-inf"))
        if allowed is not None:
            s = s.masked_fill(~allowed, float("-inf"))
        o = torch.softmax(s, dim=-1) @ v                         # [B, H, T, hd]
        x = x + o.transpose(1, 2).reshape(Bn, Tn, H * hd) @ L["wo"].T
        n = rms(x, L["ffn_norm"])
        x = x + (torch.nn.functional.silu(n @ L["gate"].T) * (n @ L["up"].T)) @ L["down"].T
    x = rms(x, m["final"])
    return x @ m["head"].T


# ------------------------------------------------------------- objectives --

def bd_allowed(T, n):
    """BD3-LM's mask over [xt ; x0] (2T x 2T, True = may attend), written as
    the paper's three parts."""
    A = torch.zeros(2 * T, 2 * T, dtype=torch.bool)
    for i in range(T):
        for j in range(T):
            bi, bj = i // n, j // n
            A[i, j] = bi == bj                  # M_BD: noisy -> own noisy block
            A[i, T + j] = bj < bi               # M_OBC: noisy -> earlier clean
            A[T + i, T + j] = bj <= bi          # M_BC: clean -> clean, causal
    return A


def model_input(cfg, case):
    """(input ids [B, T'], causal, positions or None, allowed or None)."""
    ids = torch.tensor(case["ids"], dtype=torch.long)
    if case["objective"] == "ar":
        return ids, True, None, None
    M = torch.tensor(case["mask"], dtype=torch.bool)
    xt = torch.where(M, torch.full_like(ids, cfg["mask_token_id"]), ids)
    if case["objective"] == "bd":
        T_ = ids.shape[1]
        return (torch.cat([xt, ids], dim=1), False, list(range(T_)) * 2,
                bd_allowed(T_, case["block_size"]))
    return xt, False, None, None


def loss_from_logits(case, logits):
    """The objective, written with log_softmax + gather."""
    x0 = torch.tensor(case["ids"], dtype=torch.long)
    Bn, Tn = x0.shape
    logp = torch.log_softmax(logits, dim=-1)
    if case["objective"] == "ar":
        ce = -logp[:, :-1].gather(-1, x0[:, 1:, None])[..., 0]   # [B, T-1]
        return ce.mean()
    if case["objective"] == "bd":
        logp = logp[:, :Tn]                                       # noisy half
        ce = -logp.gather(-1, x0[..., None])[..., 0]              # [B, T]
        M = torch.tensor(case["mask"], dtype=logits.dtype)
        n = case["block_size"]
        pb = torch.tensor(case["block_p"], dtype=logits.dtype)    # [B, nb]
        p_tok = pb[:, torch.arange(Tn) // n]                      # [B, T]
        return (ce * M / p_tok).sum() / (Bn * Tn)
    ce = -logp.gather(-1, x0[..., None])[..., 0]                  # [B, T]
    M = torch.tensor(case["mask"], dtype=logits.dtype)
    p = torch.tensor(case["p"], dtype=logits.dtype)
    if case["objective"] == "mdm":
        return (ce * M / p[:, None]).sum() / (Bn * Tn)
    assert case["objective"] == "mdm-sft"
    Lb = Tn - torch.tensor(case["prompt_len"], dtype=logits.dtype)
    return (ce * M / (p * Lb)[:, None]).sum() / Bn


def loss_alt(case, logits):
    """Same objective written independently: F.cross_entropy with explicit
    per-token weights (or a plain Python loop for ar)."""
    F = torch.nn.functional
    x0 = case["ids"]
    Bn, Tn = len(x0), len(x0[0])
    if case["objective"] == "ar":
        tot = 0.0
        for b in range(Bn):
            for t in range(Tn - 1):
                row = logits[b, t]
                tot = tot + (torch.logsumexp(row, 0) - row[x0[b][t + 1]])
        return tot / (Bn * (Tn - 1))
    ce = F.cross_entropy(logits[:, :Tn].reshape(Bn * Tn, -1),
                         torch.tensor(x0, dtype=torch.long).reshape(-1),
                         reduction="none").reshape(Bn, Tn)
    wts = torch.zeros(Bn, Tn, dtype=logits.dtype)
    for b in range(Bn):
        for t in range(Tn):
            if case["mask"][b][t]:
                if case["objective"] == "bd":
                    p = case["block_p"][b][t // case["block_size"]]
                    wts[b, t] = 1.0 / (p * Bn * Tn)
                elif case["objective"] == "mdm":
                    wts[b, t] = 1.0 / (case["p"][b] * Bn * Tn)
                else:
                    wts[b, t] = 1.0 / (case["p"][b] * (Tn - case["prompt_len"][b]) * Bn)
    return (ce * wts).sum()


def train_step(cfg, w, case, dtype=torch.float64):
    """(loss as float, name -> grad as float64 numpy)."""
    P = leaves(w, dtype)
    inp, causal, pos, allowed = model_input(cfg, case)
    loss = loss_from_logits(case, forward_batched(cfg, P, inp, causal, pos, allowed))
    loss.backward()
    return float(loss), {k: t.grad.detach().to(torch.float64).numpy() for k, t in P.items()}


def loss_only(cfg, Pd, case):
    with torch.no_grad():
        inp, causal, pos, allowed = model_input(cfg, case)
        return float(loss_from_logits(case, forward_batched(cfg, Pd, inp, causal, pos,
                                                            allowed)))


# ------------------------------------------------------------------ cases --

def make_case(cfg, c):
    rng = np.random.RandomState(c["seed"])
    eos, mask_id = cfg["eos_token_id"], cfg["mask_token_id"]
    case = dict(model=c["model"], objective=c["objective"])
    if c["objective"] == "mdm-sft":
        ids = []
        for b in range(B):
            n = c["prompt_len"][b] + c["answer_len"][b]
            row = [int(v) for v in rng.randint(0, 65, size=n)]   # [0, 64]
            ids.append(row + [eos] * (T - n))
    else:
        ids = [[int(v) for v in rng.randint(0, 65, size=T)] for _ in range(B)]
    assert all(mask_id not in row for row in ids)
    case["ids"] = ids
    if c["objective"] == "bd":
        n = c["block_size"]
        mask = []
        for b in range(B):
            while True:                  # Bernoulli(p of the block), >= 1 masked
                row = [int(u < c["block_p"][b][t // n])
                       for t, u in enumerate(rng.random_sample(T))]
                if 1 <= sum(row) < T:
                    break
            mask.append(row)
        case["mask"] = mask
        case["block_size"] = n
        case["block_p"] = [list(r) for r in c["block_p"]]
    elif c["objective"] != "ar":
        mask = []
        for b in range(B):
            lo = c["prompt_len"][b] if c["objective"] == "mdm-sft" else 0
            while True:                  # Bernoulli(p) per position, >= 1 masked
                row = [0] * lo + [int(u < c["p"][b]) for u in rng.random_sample(T - lo)]
                if 1 <= sum(row) < T - lo or (T - lo == 1 and sum(row) == 1):
                    break
            mask.append(row)
        case["mask"] = mask
        case["p"] = list(c["p"])
        if c["objective"] == "mdm-sft":
            case["prompt_len"] = list(c["prompt_len"])
    return case


def write_case_json(path, case):
    def rows(a):
        return "[\n" + ",\n".join("    " + json.dumps(r) for r in a) + "\n  ]"
    parts = ['  "model": %s' % json.dumps(case["model"]),
             '  "objective": %s' % json.dumps(case["objective"]),
             '  "ids": ' + rows(case["ids"])]
    if "mask" in case:
        parts.append('  "mask": ' + rows(case["mask"]))
    if "p" in case:
        parts.append('  "p": [%s]' % ", ".join(repr(float(v)) for v in case["p"]))
    if "prompt_len" in case:
        parts.append('  "prompt_len": %s' % json.dumps(case["prompt_len"]))
    if "block_p" in case:
        parts.append('  "block_size": %d' % case["block_size"])
        parts.append('  "block_p": ' + rows([[float(v) for v in r] for r in case["block_p"]]))
    parts.append('  "loss": %s' % ("%.17g" % case["loss"]))
    with open(path, "w") as fh:
        fh.write("{\n" + ",\n".join(parts) + "\n}\n")


def generate(cases, out_dir):
    for c in cases:
        cfg, w = load_model(c["model"])
        case = make_case(cfg, c)
        loss, grads = train_step(cfg, w, case)
        case["loss"] = loss
        folder = os.path.join(out_dir, c["name"])
        os.makedirs(folder, exist_ok=True)
        write_case_json(os.path.join(folder, "case.json"), case)
        g32 = {k: g.astype(np.float32) for k, g in grads.items()}
        assert set(g32) == set(w) and all(g32[k].shape == w[k].shape for k in w)
        mg.write_safetensors(os.path.join(folder, "grads.safetensors"), g32, "F32")
        print("wrote %s  (%s, loss %.17g, %d tensors)"
              % (os.path.relpath(folder, ROOT), c["objective"], loss, len(g32)))


# ------------------------------------------------------------------ check --

def forward_numpy_loop(cfg, w, ids, causal, block=0):
    """Independent LLaDA forward in numpy (per-position / per-head loops,
    rotation written on index pairs (j, j + hd/2)); with causal, query p only
    scores keys r <= p.  Used to check forward_batched, the causal path in
    particular (make_golden's references are bidirectional only)."""
    W = {k: np.asarray(a, dtype=np.float64) for k, a in w.items()}
    d, H, KV = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    hd, n = d // H, len(ids)
    E = W["model.transformer.wte.weight"]

    def norm(x, g):
        return np.stack([r / math.sqrt(float(r @ r) / d + eps) * g for r in x])

    def rot(vec, pos):
        out = vec.copy()
        for j in range(hd // 2):
            a = pos * theta ** (-2.0 * j / hd)
            out[j] = vec[j] * math.cos(a) - vec[j + hd // 2] * math.sin(a)
            out[j + hd // 2] = vec[j + hd // 2] * math.cos(a) + vec[j] * math.sin(a)
        return out

    x = np.stack([E[i] for i in ids])
    for i in range(cfg["n_layers"]):
        pre = "model.transformer.blocks.%d." % i
        g = lambda s: W[pre + s + ".weight"]                     # noqa: E731
        h = norm(x, g("attn_norm"))
        Q, K, V = h @ g("q_proj").T, h @ g("k_proj").T, h @ g("v_proj").T
        att = np.zeros((n, d))
        for hh in range(H):
            kh = hh * KV // H
            for p in range(n):
                keys = (range(p + 1) if causal else
                        range(min(n, (p // block + 1) * block)) if block else range(n))
                q = rot(Q[p, hh * hd:(hh + 1) * hd], p)
                sc = np.array([q @ rot(K[r, kh * hd:(kh + 1) * hd], r)
                               for r in keys]) / math.sqrt(hd)
                e = np.exp(sc - sc.max())
                att[p, hh * hd:(hh + 1) * hd] = (e / e.sum()) @ V[:len(e), kh * hd:(kh + 1) * hd]
        x = x + att @ g("attn_out").T
        h = norm(x, g("ff_norm"))
        gate = h @ g("ff_proj").T
        x = x + ((gate / (1.0 + np.exp(-gate))) * (h @ g("up_proj").T)) @ g("ff_out").T
    x = norm(x, W["model.transformer.ln_f.weight"])
    head = E if cfg["weight_tying"] else W["model.transformer.ff_out.weight"]
    return x @ head.T


def fd_check(cfg, w, case, grads, rng, per_tensor=4, eps=1e-6):
    """Central differences on a few coordinates of every tensor.
    Returns (max relative error, max absolute error, #coordinates)."""
    Pd = {k: torch.from_numpy(np.array(a, dtype=np.float64)) for k, a in w.items()}
    worst_rel = worst_abs = 0.0
    count = 0
    for name in sorted(w):
        g = grads[name]
        flat = Pd[name].view(-1)
        coords = set(int(i) for i in rng.choice(flat.numel(), size=per_tensor, replace=False))
        coords.add(int(np.abs(g).reshape(-1).argmax()))
        for i in sorted(coords):
            orig = float(flat[i])
            flat[i] = orig + eps
            lp = loss_only(cfg, Pd, case)
            flat[i] = orig - eps
            lm = loss_only(cfg, Pd, case)
            flat[i] = orig
            fd = (lp - lm) / (2 * eps)
            ad = float(g.reshape(-1)[i])
            err = abs(fd - ad)
            rel = err / max(abs(fd), abs(ad), 1e-6)
            worst_abs = max(worst_abs, err)
            worst_rel = max(worst_rel, rel)
            count += 1
    return worst_rel, worst_abs, count


def check(cases):
    rng = np.random.RandomState(12345)
    worst_fd = 0.0
    for c in cases:
        folder = os.path.join(OUT_DIR, c["name"])
        with open(os.path.join(folder, "case.json")) as fh:
            case = json.load(fh)
        cfg, w = load_model(case["model"])
        assert case["model"] == c["model"] and case["objective"] == c["objective"]
        ids = case["ids"]
        assert len(ids) == B and all(len(r) == T for r in ids)
        assert all(0 <= v <= 65 and v != cfg["mask_token_id"] for r in ids for v in r)
        if case["objective"] == "ar":
            assert "mask" not in case and "p" not in case
        elif case["objective"] == "bd":
            assert "p" not in case and case["block_size"] == c["block_size"]
            nb = -(-T // case["block_size"])
            assert all(len(r) == nb and all(0 < v <= 1 for v in r) for r in case["block_p"])
            assert all(1 <= sum(r) and set(r) <= {0, 1} for r in case["mask"])
        else:
            for b in range(B):
                lo = case["prompt_len"][b] if case["objective"] == "mdm-sft" else 0
                assert sum(case["mask"][b]) >= 1
                assert all(v == 0 for v in case["mask"][b][:lo])
                assert all(v in (0, 1) for v in case["mask"][b])
                assert 0 < case["p"][b] <= 1

        # 1. recomputation reproduces the stored loss and float32 gradients
        loss, grads = train_step(cfg, w, case)
        assert abs(loss - case["loss"]) <= 1e-13 * abs(loss), (c["name"], loss, case["loss"])
        stored, dtypes = mg.read_safetensors(os.path.join(folder, "grads.safetensors"))
        assert set(dtypes.values()) == {"F32"} and set(stored) == set(w)
        for k in w:
            assert stored[k].shape == w[k].shape, k
            assert np.array_equal(stored[k], grads[k].astype(np.float32)), k

        # 2. batched forward agrees with make_golden.forward_torch
        P = {k: torch.from_numpy(np.array(a, dtype=np.float64)) for k, a in w.items()}
        inp, causal, pos, allowed = model_input(cfg, case)
        with torch.no_grad():
            logits = forward_batched(cfg, P, inp, causal, pos, allowed)
            bidi = forward_batched(cfg, P, inp, False)
        fwd_err = 0.0
        if case["objective"] == "bd":
            # 2'. block by block: the loop forward, block-causal, on the clean
            #     blocks before k then the noisy block k gives the vectorised
            #     logits of block k (noisy half); the clean half equals the
            #     block-causal forward of x0 alone.
            n = case["block_size"]
            for b in range(B):
                x0 = case["ids"][b]
                xt = [int(v) for v in inp[b, :T]]
                for k in range(-(-T // n)):
                    end = min(T, (k + 1) * n)
                    alt = forward_numpy_loop(cfg, w, x0[:k * n] + xt[k * n:end], False, n)
                    fwd_err = max(fwd_err, float(np.abs(
                        logits[b, k * n:end].numpy() - alt[k * n:end]).max()))
                clean = forward_numpy_loop(cfg, w, x0, False, n)
                fwd_err = max(fwd_err, float(np.abs(logits[b, T:].numpy() - clean).max()))
            assert fwd_err < 1e-10, (c["name"], fwd_err)
        for b in range(B if case["objective"] != "bd" else 0):
            row = [int(v) for v in inp[b]]
            ref = mg.forward_torch(cfg, w, row)
            fwd_err = max(fwd_err, float((bidi[b] - ref).abs().max()))
            fwd_err = max(fwd_err, float(np.abs(bidi[b].numpy() -
                                                forward_numpy_loop(cfg, w, row, False)).max()))
            if causal:
                alt = forward_numpy_loop(cfg, w, row, True)
                fwd_err = max(fwd_err, float(np.abs(logits[b].numpy() - alt).max()))
                for t in range(T):       # causality: a prefix run gives the same logits
                    with torch.no_grad():
                        pre = forward_batched(cfg, P, inp[b:b + 1, :t + 1], True)[0]
                    fwd_err = max(fwd_err, float((logits[b, :t + 1] - pre).abs().max()))
        assert fwd_err < 1e-10, (c["name"], fwd_err)

        # 2b. tied head: the single wte gradient == input-embedding part +
        #     output-head part (computed here with two separate leaves), and a
        #     finite difference on a row that is both an input token and a target
        if cfg["weight_tying"]:
            wte = "model.transformer.wte.weight"
            split = dict(w, **{"model.transformer.ff_out.weight": w[wte]})
            Ps = leaves(split, torch.float64)
            loss_s = loss_from_logits(case, forward_batched(
                dict(cfg, weight_tying=False), Ps, inp, causal, pos, allowed))
            loss_s.backward()
            g_in = Ps[wte].grad.numpy()
            g_out = Ps["model.transformer.ff_out.weight"].grad.numpy()
            assert abs(float(loss_s) - loss) <= 1e-14 * abs(loss)
            tie_err = float(np.abs(g_in + g_out - grads[wte]).max())
            assert tie_err < 1e-14, tie_err
            # the input row where both contributions are largest
            tok = max(set(int(v) for v in inp.reshape(-1)),
                      key=lambda r: min(abs(g_in[r, 3]), abs(g_out[r, 3])))
            Pd = {k: torch.from_numpy(np.array(a, dtype=np.float64)) for k, a in w.items()}
            e = 1e-6
            Pd[wte][tok, 3] += e
            lp = loss_only(cfg, Pd, case)
            Pd[wte][tok, 3] -= 2 * e
            lm = loss_only(cfg, Pd, case)
            fd = (lp - lm) / (2 * e)
            assert abs(fd - grads[wte][tok, 3]) <= 1e-6 * max(abs(fd), 1e-3), (fd, grads[wte][tok, 3])
            print("%-22s tied wte: |in + head - total| = %.1e; row %d: in %.6g + head %.6g "
                  "= %.6g, FD %.6g" % (c["name"], tie_err, tok, g_in[tok, 3], g_out[tok, 3],
                                       grads[wte][tok, 3], fd))

        # 3. loss written independently
        alt = float(loss_alt(case, logits))
        assert abs(alt - loss) <= 1e-12 * abs(loss), (c["name"], alt, loss)

        # 4. finite differences
        rel, ab, n = fd_check(cfg, w, case, grads, rng)
        worst_fd = max(worst_fd, rel)
        assert rel < 1e-5, (c["name"], rel)

        # 5. float32 evaluation of the same step
        l32, g32 = train_step(cfg, w, case, dtype=torch.float32)
        gerr = max(float(np.abs(g32[k] - grads[k]).max()) for k in w)
        gmax = max(float(np.abs(grads[k]).max()) for k in w)
        grel = max(float(np.abs(g32[k] - grads[k]).max() / max(np.abs(grads[k]).max(), 1e-30))
                   for k in w)
        print("%-22s %-7s loss=%.6f  fwd-vs-make_golden=%.1e  alt-loss=%.1e  "
              "FD: %d coords max rel %.2e (abs %.1e)  fp32: loss %.1e, grad abs %.1e "
              "(max|g| %.3g), worst per-tensor rel %.1e"
              % (c["name"], case["objective"], loss, fwd_err, abs(alt - loss), n, rel, ab,
                 abs(l32 - loss), gerr, gmax, grel))
    print("OK: all train golden files verified (worst FD relative error %.2e)" % worst_fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="verify tests/golden_train (incl. finite differences) "
                         "instead of regenerating it")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="only this case (repeatable); default all")
    ap.add_argument("--out", default=OUT_DIR,
                    help="folder to write the cases into (default tests/golden_train)")
    args = ap.parse_args()
    torch.set_num_threads(1)          # deterministic reductions
    names = [c["name"] for c in CASES]
    for n in args.only:
        assert n in names, "unknown case %s (have %s)" % (n, ", ".join(names))
    cases = [c for c in CASES if not args.only or c["name"] in args.only]
    if args.check:
        check(cases)
    else:
        generate(cases, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
