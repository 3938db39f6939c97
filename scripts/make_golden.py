#!/usr/bin/python3
"""Golden reference logits for dllm's forward-pass tests.

How to run (from the repository root; needs numpy and torch, which Debian's
/usr/bin/python3 has, and nothing else):

    /usr/bin/python3 scripts/make_golden.py           # regenerate tests/golden/
    /usr/bin/python3 scripts/make_golden.py --check   # verify tests/golden/

Regeneration writes, for every case in CASES, a folder tests/golden/<case>/
holding

    config.json        a full config in the published model's own format
                       (LLaDA: model_type "llada"; Dream: model_type "Dream")
    model.safetensors  random weights under the published tensor names,
                       stored as F32 or BF16
    golden.json        {"model_type": ..., "weights_dtype": "F32"|"BF16",
                        "cases": [{"ids": [...], "logits": [[V floats] * T]}]}

Everything is seeded, so a rerun reproduces the same files.  --check re-reads
the written safetensors with this script's own reader, recomputes the logits
twice (the torch reference below, and a second, independently written numpy
implementation) and asserts both match golden.json.  It also prints how far a
plain float32 evaluation lands from the float64 reference, which is the
tolerance a float32 engine should expect.

Semantics followed (read to learn the behaviour; no code copied):

* LLaDA: GSAI-ML/LLaDA-8B-{Base,Instruct} modeling_llada.py (OLMo-derived):
  LLaDAModel.forward, LLaDALlamaBlock.forward, LLaDABlock.attention /
  _scaled_dot_product_attention, RMSLayerNorm, RotaryEmbedding.
    x = wte[ids]                     (input_emb_norm false: no sqrt(d) scale)
    per block:
      h  = x + attn_out(Attn(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n)))
           with n = attn_norm(x)
      x  = h + ff_out(silu(ff_proj(m)) * up_proj(m)),   m = ff_norm(h)
    logits = ln_f(x) @ ff_out^T  (weight_tying false) or @ wte^T (true);
    scale_logits false; logits have embedding_size columns.
  Attention is bidirectional (is_causal=False, no bias without padding),
  scale 1/sqrt(head_dim), head_dim = d_model / n_heads; GQA by
  repeat_interleave over the head axis, i.e. query head h reads kv head
  h // (n_heads / n_kv_heads).
* Dream: Dream-org/Dream-v0-{Base,Instruct}-7B modeling_dream.py (a Qwen2
  copy run non-causally): DreamBaseModel.forward, DreamDecoderLayer,
  DreamSdpaAttention (is_causal=False), DreamRMSNorm, DreamRotaryEmbedding
  (rope_type "default"), DreamMLP, repeat_kv; DreamModel.forward applies
  lm_head to every position (no shift).  q/k/v projections always carry a
  bias in Dream (hard-coded bias=True), o_proj never does; lm_head is
  absent from the file when tie_word_embeddings is true (embed_tokens used).
* Both: RMSNorm(x) = x * rsqrt(mean(x^2) + eps) * weight.  RoPE is the
  rotate-half form: inv_freq[i] = theta^(-2i/head_dim), angle(p, j) =
  p * inv_freq[j mod head_dim/2], x' = x*cos + rotate_half(x)*sin with
  rotate_half(x) = concat(-x[half:], x[:half]), positions 0..T-1.
* Block diffusion (our config.json extension "block_size": n, LLaDA layout):
  the same model with block-causal attention, as BD3-LM (Arriola et al.,
  2025, "Block Diffusion", the vectorised training mask restricted to the
  clean sequence), Fast-dLLM v2 and SDAR run at inference: query i attends
  key j iff j // n <= i // n (a whole block sees itself and every earlier
  block, never a later one).

The reference evaluates in float64 from the stored values (BF16 weights are
upcast exactly) and rounds the logits to float32.  That is the engine's
semantics: weights in storage precision, activations in float32.

safetensors is written and read by the small functions below (8-byte
little-endian header size N, an N-byte JSON header padded with spaces to a
multiple of 8, then the raw little-endian tensor data).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")

SEQ_LENGTHS = (1, 7, 33)

# name, architecture, storage dtype, seed, architecture sizes.
CASES = [
    dict(name="llada_untied_f32", arch="llada", dtype="F32", seed=1001,
         d_model=32, n_heads=4, n_kv_heads=4, n_layers=2, mlp_hidden_size=48,
         vocab_size=67, tied=False, mask=66, eos=65, theta=500000.0),
    dict(name="llada_tied_f32", arch="llada", dtype="F32", seed=1002,
         d_model=32, n_heads=4, n_kv_heads=4, n_layers=3, mlp_hidden_size=48,
         vocab_size=67, tied=True, mask=66, eos=65, theta=500000.0),
    dict(name="dream_gqa_f32", arch="dream", dtype="F32", seed=2001,
         d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=40,
         vocab_size=71, tied=False, mask=70, eos=68, bos=67, pad=69,
         theta=1000000.0),
    dict(name="dream_tied_f32", arch="dream", dtype="F32", seed=2002,
         d_model=32, n_heads=4, n_kv_heads=1, n_layers=2, mlp_hidden_size=40,
         vocab_size=71, tied=True, mask=70, eos=68, bos=67, pad=69,
         theta=1000000.0),
]
# The BF16 cases reuse the seeds (hence the weights before rounding, and the
# token ids) of their F32 twins.
CASES += [
    dict(CASES[0], name="llada_untied_bf16", dtype="BF16"),
    dict(CASES[2], name="dream_gqa_bf16", dtype="BF16"),
]
# A block-diffusion model (BD3-LM / Fast-dLLM v2 / SDAR attention): block 5
# divides none of SEQ_LENGTHS, so every sequence ends in a short block.
CASES += [
    dict(name="llada_block_f32", arch="llada", dtype="F32", seed=1003,
         d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=48,
         vocab_size=67, tied=False, mask=66, eos=65, theta=10000.0,
         block_size=5),
]


# ---------------------------------------------------------------- configs --

def llada_config(c):
    """Every field of GSAI-ML/LLaDA-8B's config.json, at toy sizes."""
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": c["d_model"],
        "embedding_dropout": 0.0,
        "embedding_size": c["vocab_size"],
        "eos_token_id": c["eos"],
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": c["mask"],
        "max_sequence_length": 4096,
        "mlp_hidden_size": c["mlp_hidden_size"],
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": c["n_heads"],
        "n_kv_heads": c["n_kv_heads"],
        "n_layers": c["n_layers"],
        "pad_token_id": c["eos"],
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": c["theta"],
        "scale_logits": False,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": c["vocab_size"],
        "weight_tying": c["tied"],
    }


def dream_config(c):
    """Every field of Dream-org/Dream-v0-Base-7B's config.json, at toy sizes."""
    return {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "bos_token_id": c["bos"],
        "eos_token_id": c["eos"],
        "hidden_act": "silu",
        "hidden_size": c["d_model"],
        "initializer_range": 0.02,
        "intermediate_size": c["mlp_hidden_size"],
        "mask_token_id": c["mask"],
        "max_position_embeddings": 131072,
        "max_window_layers": c["n_layers"],
        "model_type": "Dream",
        "num_attention_heads": c["n_heads"],
        "num_hidden_layers": c["n_layers"],
        "num_key_value_heads": c["n_kv_heads"],
        "pad_token_id": c["pad"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": c["theta"],
        "sliding_window": 131072,
        "tie_word_embeddings": c["tied"],
        "torch_dtype": "bfloat16" if c["dtype"] == "BF16" else "float32",
        "transformers_version": "4.46.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": c["vocab_size"],
    }


def make_config(c):
    cfg = llada_config(c) if c["arch"] == "llada" else dream_config(c)
    if c.get("block_size"):
        cfg["block_size"] = c["block_size"]
    return cfg


# ---------------------------------------------------------------- weights --

def make_weights(c):
    """Random float32 weights under the published tensor names."""
    rng = np.random.RandomState(c["seed"])
    d, f, v = c["d_model"], c["mlp_hidden_size"], c["vocab_size"]
    hd = d // c["n_heads"]
    kv = c["n_kv_heads"] * hd

    def mat(rows, cols, std=0.2):
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    def bias(n):
        return (0.1 * rng.standard_normal(n)).astype(np.float32)

    w = {}
    if c["arch"] == "llada":
        p = "model.transformer."
        w[p + "wte.weight"] = mat(v, d, 0.5)
        for i in range(c["n_layers"]):
            b = p + "blocks.%d." % i
            w[b + "attn_norm.weight"] = norm()
            w[b + "q_proj.weight"] = mat(d, d)
            w[b + "k_proj.weight"] = mat(kv, d)
            w[b + "v_proj.weight"] = mat(kv, d)
            w[b + "attn_out.weight"] = mat(d, d)
            w[b + "ff_norm.weight"] = norm()
            w[b + "ff_proj.weight"] = mat(f, d)
            w[b + "up_proj.weight"] = mat(f, d)
            w[b + "ff_out.weight"] = mat(d, f)
        w[p + "ln_f.weight"] = norm()
        if not c["tied"]:
            w[p + "ff_out.weight"] = mat(v, d)
    else:
        w["model.embed_tokens.weight"] = mat(v, d, 0.5)
        for i in range(c["n_layers"]):
            b = "model.layers.%d." % i
            w[b + "input_layernorm.weight"] = norm()
            w[b + "self_attn.q_proj.weight"] = mat(d, d)
            w[b + "self_attn.q_proj.bias"] = bias(d)
            w[b + "self_attn.k_proj.weight"] = mat(kv, d)
            w[b + "self_attn.k_proj.bias"] = bias(kv)
            w[b + "self_attn.v_proj.weight"] = mat(kv, d)
            w[b + "self_attn.v_proj.bias"] = bias(kv)
            w[b + "self_attn.o_proj.weight"] = mat(d, d)
            w[b + "post_attention_layernorm.weight"] = norm()
            w[b + "mlp.gate_proj.weight"] = mat(f, d)
            w[b + "mlp.up_proj.weight"] = mat(f, d)
            w[b + "mlp.down_proj.weight"] = mat(d, f)
        w["model.norm.weight"] = norm()
        if not c["tied"]:
            w["lm_head.weight"] = mat(v, d)
    return w


def make_ids(c):
    """Token sequences of SEQ_LENGTHS, each holding some mask tokens."""
    rng = np.random.RandomState(c["seed"] + 500)
    v, mask = c["vocab_size"], c["mask"]
    seqs = []
    for t in SEQ_LENGTHS:
        if t == 1:
            seqs.append([mask])
            continue
        ids = rng.randint(0, v - 1, size=t)          # ordinary tokens
        k = max(2, t // 3)
        where = rng.choice(t - 1, size=k - 1, replace=False)
        ids[where] = mask
        ids[t - 1] = mask                            # always a trailing mask
        seqs.append([int(x) for x in ids])
    return seqs


# ------------------------------------------------------------- bfloat16 --

def f32_to_bf16_bits(a):
    """Round float32 to bfloat16 (nearest, ties to even); returns uint16."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------- safetensors --

_ST_DTYPES = {"F32": (np.dtype("<f4"), 4), "BF16": (np.dtype("<u2"), 2)}


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float32 array; stored as `dtype` ("F32" or "BF16")."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if dtype == "BF16":
            raw = f32_to_bf16_bits(a).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for raw in blobs:
            fh.write(raw)


def read_safetensors(path):
    """Returns (name -> float32 array, name -> stored dtype)."""
    with open(path, "rb") as fh:
        data = fh.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        np_dtype, size = _ST_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert end - begin == count * size, name
        a = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(info["shape"])
        if info["dtype"] == "BF16":
            a = bf16_bits_to_f32(a)
        out[name] = np.array(a, dtype=np.float32)
        dtypes[name] = info["dtype"]
    return out, dtypes


# ----------------------------------------------- reference forward (torch) --

def unify(cfg, w):
    """Maps either architecture's config and tensors onto one layout."""
    if cfg["model_type"] == "llada":
        p = "model.transformer."
        hp = dict(d=cfg["d_model"], heads=cfg["n_heads"],
                  kv_heads=cfg["n_kv_heads"] or cfg["n_heads"],
                  layers=cfg["n_layers"], eps=cfg["rms_norm_eps"],
                  theta=cfg["rope_theta"])
        assert cfg["block_type"] == "llama" and cfg["layer_norm_type"] == "rms"
        assert cfg["activation_type"] == "silu" and cfg["rope"]
        assert not cfg["include_bias"] and not cfg["include_qkv_bias"]
        assert not cfg["input_emb_norm"] and not cfg["scale_logits"]
        layers = []
        for i in range(hp["layers"]):
            b = p + "blocks.%d." % i
            layers.append(dict(
                attn_norm=w[b + "attn_norm.weight"],
                wq=w[b + "q_proj.weight"], bq=None,
                wk=w[b + "k_proj.weight"], bk=None,
                wv=w[b + "v_proj.weight"], bv=None,
                wo=w[b + "attn_out.weight"],
                ffn_norm=w[b + "ff_norm.weight"],
                gate=w[b + "ff_proj.weight"], up=w[b + "up_proj.weight"],
                down=w[b + "ff_out.weight"]))
        embed = w[p + "wte.weight"]
        head = embed if cfg["weight_tying"] else w[p + "ff_out.weight"]
        final = w[p + "ln_f.weight"]
    else:
        hp = dict(d=cfg["hidden_size"], heads=cfg["num_attention_heads"],
                  kv_heads=cfg["num_key_value_heads"],
                  layers=cfg["num_hidden_layers"], eps=cfg["rms_norm_eps"],
                  theta=cfg["rope_theta"])
        assert cfg["hidden_act"] == "silu" and cfg["rope_scaling"] is None
        layers = []
        for i in range(hp["layers"]):
            b = "model.layers.%d." % i
            a = b + "self_attn."
            layers.append(dict(
                attn_norm=w[b + "input_layernorm.weight"],
                wq=w[a + "q_proj.weight"], bq=w[a + "q_proj.bias"],
                wk=w[a + "k_proj.weight"], bk=w[a + "k_proj.bias"],
                wv=w[a + "v_proj.weight"], bv=w[a + "v_proj.bias"],
                wo=w[a + "o_proj.weight"],
                ffn_norm=w[b + "post_attention_layernorm.weight"],
                gate=w[b + "mlp.gate_proj.weight"],
                up=w[b + "mlp.up_proj.weight"],
                down=w[b + "mlp.down_proj.weight"]))
        embed = w["model.embed_tokens.weight"]
        head = embed if cfg["tie_word_embeddings"] else w["lm_head.weight"]
        final = w["model.norm.weight"]
    return hp, dict(embed=embed, layers=layers, final=final, head=head)


def forward_torch(cfg, w, ids, dtype=torch.float64):
    """Logits [T, V] for one unbatched sequence, evaluated in `dtype`."""
    hp, m = unify(cfg, w)
    T = len(ids)
    H, KV = hp["heads"], hp["kv_heads"]
    hd = hp["d"] // H
    group = H // KV

    def t(a):
        return None if a is None else torch.from_numpy(np.asarray(a)).to(dtype)

    def rms(x, g):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + hp["eps"]) * t(g)

    def linear(x, wt, b=None):
        y = x @ t(wt).T
        return y if b is None else y + t(b)

    half = hd // 2
    inv_freq = 1.0 / (hp["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    ang = torch.cat([ang, ang], dim=-1)                       # [T, hd]
    cos, sin = ang.cos().to(dtype), ang.sin().to(dtype)

    def rope(x):                                              # [heads, T, hd]
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    # Without block_size no mask (bidirectional); with it, key j is hidden
    # from query i when block(j) > block(i).
    bs = cfg.get("block_size") or 0
    blk = torch.arange(T) // bs if bs else None
    later_block = (blk[None, :] > blk[:, None]) if bs else None  # [T(q), T(k)]

    x = t(m["embed"])[torch.tensor(ids, dtype=torch.long)]   # [T, d]
    for L in m["layers"]:
        n = rms(x, L["attn_norm"])
        q = linear(n, L["wq"], L["bq"]).view(T, H, hd).transpose(0, 1)
        k = linear(n, L["wk"], L["bk"]).view(T, KV, hd).transpose(0, 1)
        v = linear(n, L["wv"], L["bv"]).view(T, KV, hd).transpose(0, 1)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(group, dim=0)                # kv head h // group
        v = v.repeat_interleave(group, dim=0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)          # [H, T, T]
        if bs:                                               # block-causal
            s = s.masked_fill(later_block, float("-inf"))
        o = torch.softmax(s, dim=-1) @ v                     # [H, T, hd]
        x = x + linear(o.transpose(0, 1).reshape(T, H * hd), L["wo"])
        n = rms(x, L["ffn_norm"])
        g = linear(n, L["gate"])
        x = x + linear(torch.nn.functional.silu(g) * linear(n, L["up"]), L["down"])
    x = rms(x, m["final"])
    return linear(x, m["head"])


# ---------------------------- second, independent implementation (numpy) --

def forward_numpy_alt(cfg, w, ids):
    """Same model written another way (per-head loops, explicit rotation of
    index pairs (j, j + hd/2), tensor names looked up directly)."""
    llada = cfg["model_type"] == "llada"
    W = {k: np.asarray(a, dtype=np.float64) for k, a in w.items()}
    if llada:
        d, H = cfg["d_model"], cfg["n_heads"]
        KV, nl = cfg["n_kv_heads"], cfg["n_layers"]
        eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
        E = W["model.transformer.wte.weight"]
    else:
        d, H = cfg["hidden_size"], cfg["num_attention_heads"]
        KV, nl = cfg["num_key_value_heads"], cfg["num_hidden_layers"]
        eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
        E = W["model.embed_tokens.weight"]
    hd = d // H
    T = len(ids)
    bs = cfg.get("block_size") or 0

    def keys_of(p):        # the keys query p may attend to
        if not bs:
            return list(range(T))
        end = min(T, (p // bs + 1) * bs)    # to the end of p's own block
        return list(range(end))

    def norm(x, g):
        out = np.empty_like(x)
        for r in range(x.shape[0]):
            out[r] = x[r] / math.sqrt(float(np.dot(x[r], x[r])) / x.shape[1] + eps) * g
        return out

    def rotate(vec, pos):
        out = vec.copy()
        for j in range(hd // 2):
            a = pos * theta ** (-2.0 * j / hd)
            c, s = math.cos(a), math.sin(a)
            x0, x1 = vec[j], vec[j + hd // 2]
            out[j] = x0 * c - x1 * s
            out[j + hd // 2] = x1 * c + x0 * s
        return out

    x = np.stack([E[i] for i in ids])
    for i in range(nl):
        if llada:
            b = "model.transformer.blocks.%d." % i
            g1, g2 = W[b + "attn_norm.weight"], W[b + "ff_norm.weight"]
            wq, wk, wv = W[b + "q_proj.weight"], W[b + "k_proj.weight"], W[b + "v_proj.weight"]
            bq = np.zeros(wq.shape[0]); bk = np.zeros(wk.shape[0]); bv = np.zeros(wv.shape[0])
            wo = W[b + "attn_out.weight"]
            wg, wu, wd = W[b + "ff_proj.weight"], W[b + "up_proj.weight"], W[b + "ff_out.weight"]
        else:
            b = "model.layers.%d." % i
            g1, g2 = W[b + "input_layernorm.weight"], W[b + "post_attention_layernorm.weight"]
            a = b + "self_attn."
            wq, wk, wv = W[a + "q_proj.weight"], W[a + "k_proj.weight"], W[a + "v_proj.weight"]
            bq, bk, bv = W[a + "q_proj.bias"], W[a + "k_proj.bias"], W[a + "v_proj.bias"]
            wo = W[a + "o_proj.weight"]
            wg, wu, wd = (W[b + "mlp.gate_proj.weight"], W[b + "mlp.up_proj.weight"],
                          W[b + "mlp.down_proj.weight"])
        n = norm(x, g1)
        Q, K, V = n @ wq.T + bq, n @ wk.T + bk, n @ wv.T + bv
        att = np.zeros((T, d))
        for h in range(H):
            kvh = h * KV // H
            qh = [rotate(Q[p, h * hd:(h + 1) * hd], p) for p in range(T)]
            kh = [rotate(K[p, kvh * hd:(kvh + 1) * hd], p) for p in range(T)]
            vh = V[:, kvh * hd:(kvh + 1) * hd]
            for p in range(T):
                ks = keys_of(p)
                sc = np.array([np.dot(qh[p], kh[r]) for r in ks]) / math.sqrt(hd)
                e = np.exp(sc - sc.max())
                att[p, h * hd:(h + 1) * hd] = (e / e.sum()) @ vh[ks]
        x = x + att @ wo.T
        n = norm(x, g2)
        gate = n @ wg.T
        x = x + ((gate / (1.0 + np.exp(-gate))) * (n @ wu.T)) @ wd.T
    if llada:
        x = norm(x, W["model.transformer.ln_f.weight"])
        head = E if cfg["weight_tying"] else W["model.transformer.ff_out.weight"]
    else:
        x = norm(x, W["model.norm.weight"])
        head = E if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T


# ----------------------------------------------------------------- output --

def fmt(v):
    return "%.9g" % float(np.float32(v))


def write_golden(path, model_type, dtype, seqs, logits):
    lines = ['{"model_type": %s, "weights_dtype": %s, "cases": [' %
             (json.dumps(model_type), json.dumps(dtype))]
    for ci, (ids, lg) in enumerate(zip(seqs, logits)):
        lines.append(' {"ids": %s,' % json.dumps(ids))
        lines.append('  "logits": [')
        rows = ["   [" + ", ".join(fmt(v) for v in row) + "]" for row in lg]
        lines.append(",\n".join(rows))
        lines.append("  ]}" + ("," if ci + 1 < len(seqs) else ""))
    lines.append("]}")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")


def generate(cases, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for c in cases:
        folder = os.path.join(out_dir, c["name"])
        os.makedirs(folder, exist_ok=True)
        cfg = make_config(c)
        w32 = make_weights(c)
        if c["dtype"] == "BF16":
            stored = {k: bf16_bits_to_f32(f32_to_bf16_bits(a)) for k, a in w32.items()}
            # the rounding must agree with torch's float32 -> bfloat16 cast
            for k, a in w32.items():
                ref = torch.from_numpy(a).to(torch.bfloat16).to(torch.float32).numpy()
                assert np.array_equal(ref, stored[k]), k
        else:
            stored = w32
        write_json(os.path.join(folder, "config.json"), cfg)
        write_safetensors(os.path.join(folder, "model.safetensors"), stored, c["dtype"])
        seqs = make_ids(c)
        logits = [forward_torch(cfg, stored, ids).numpy().astype(np.float32) for ids in seqs]
        write_golden(os.path.join(folder, "golden.json"), cfg["model_type"],
                     c["dtype"], seqs, logits)
        print("wrote %s (%d tensors, %s)" % (os.path.relpath(folder, ROOT),
                                             len(stored), c["dtype"]))


def check(cases):
    worst32 = 0.0
    for c in cases:
        folder = os.path.join(GOLDEN_DIR, c["name"])
        with open(os.path.join(folder, "config.json")) as fh:
            cfg = json.load(fh)
        with open(os.path.join(folder, "golden.json")) as fh:
            gold = json.load(fh)
        w, dtypes = read_safetensors(os.path.join(folder, "model.safetensors"))
        assert set(dtypes.values()) == {c["dtype"]}, dtypes
        assert gold["model_type"] == cfg["model_type"]
        assert gold["weights_dtype"] == c["dtype"]
        assert [len(k["ids"]) for k in gold["cases"]] == list(SEQ_LENGTHS)
        vocab = cfg.get("embedding_size") or cfg["vocab_size"]
        for case in gold["cases"]:
            ids = case["ids"]
            g = np.array(case["logits"], dtype=np.float32)
            assert g.shape == (len(ids), vocab), g.shape
            assert cfg["mask_token_id"] in ids
            ref = forward_torch(cfg, w, ids)
            # 1. self-consistency: recomputation reproduces the stored float32 logits
            err = np.abs(ref.numpy().astype(np.float32) - g).max()
            assert err <= 1e-6 * max(1.0, np.abs(g).max()), (c["name"], len(ids), err)
            # 2. an independent implementation agrees with the reference
            alt = forward_numpy_alt(cfg, w, ids)
            err_alt = np.abs(alt - ref.numpy()).max()
            assert err_alt < 1e-10, (c["name"], len(ids), err_alt)
            # 2b. block-causal: every prefix that ends on a block boundary
            #     (or at T) reproduces its rows, so no block saw a later one
            bs = cfg.get("block_size") or 0
            if bs:
                for end in sorted(set(list(range(bs, len(ids), bs)) + [len(ids)])):
                    pre = forward_torch(cfg, w, ids[:end]).numpy()
                    e = np.abs(pre - ref.numpy()[:end]).max()
                    assert e < 1e-10, (c["name"], len(ids), end, e)
                if len(ids) > bs:   # and the mask matters: full attention differs
                    full = forward_torch(dict(cfg, block_size=0), w, ids).numpy()
                    assert np.abs(full[:bs] - ref.numpy()[:bs]).max() > 1e-3
            # 3. what a float32 evaluation of the same model costs in accuracy
            f32 = forward_torch(cfg, w, ids, dtype=torch.float32).numpy()
            e32 = float(np.abs(f32 - g).max())
            worst32 = max(worst32, e32)
            print("%-18s T=%-2d max|logit|=%6.3f  alt-impl diff=%.1e  fp32 diff=%.2e"
                  % (c["name"], len(ids), np.abs(g).max(), err_alt, e32))
    print("OK: all golden files verified (worst float32-vs-reference diff %.2e)" % worst32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="verify tests/golden instead of regenerating it")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="only this case (repeatable); default all")
    ap.add_argument("--out", default=GOLDEN_DIR,
                    help="folder to write the cases into (default tests/golden)")
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
