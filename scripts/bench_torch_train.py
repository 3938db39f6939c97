#!/usr/bin/env python3
"""PyTorch eager baseline for `dllm bench train`: the same transformer shape
(RMSNorm, RoPE rotate-half, SwiGLU, untied head), the same AR or MDM loss and
an AdamW step, timed on the CPU with the given thread count. Prints one JSON
line. Run with Debian's interpreter: /usr/bin/python3 (python3-torch)."""
import argparse, json, math, time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objective", default="ar")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    C, H, L, V, Fd, T, B = a.d_model, a.heads, a.layers, a.vocab, a.ffn, a.context, a.batch
    hd = C // H

    def p(*shape, std=0.02):
        return (torch.randn(*shape) * std).requires_grad_()

    params = {"wte": p(V, C), "head": p(V, C), "lnf": torch.ones(C, requires_grad=True)}
    for l in range(L):
        for n, s in (("q", (C, C)), ("k", (C, C)), ("v", (C, C)), ("o", (C, C)),
                     ("g", (Fd, C)), ("u", (Fd, C)), ("d", (C, Fd))):
            params[f"{l}.{n}"] = p(*s)
        params[f"{l}.n1"] = torch.ones(C, requires_grad=True)
        params[f"{l}.n2"] = torch.ones(C, requires_grad=True)
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def forward(ids, causal):
        x = params["wte"][ids]
        for l in range(L):
            h = rms(x, params[f"{l}.n1"])
            q = rope((h @ params[f"{l}.q"].T).view(B, T, H, hd).transpose(1, 2))
            k = rope((h @ params[f"{l}.k"].T).view(B, T, H, hd).transpose(1, 2))
            v = (h @ params[f"{l}.v"].T).view(B, T, H, hd).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=causal) if hasattr(F, "scaled_dot_product_attention") \
                else torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd) +
                                   (torch.full((T, T), float("-inf")).triu(1) if causal else 0), -1) @ v
            x = x + att.transpose(1, 2).reshape(B, T, C) @ params[f"{l}.o"].T
            h = rms(x, params[f"{l}.n2"])
            x = x + (F.silu(h @ params[f"{l}.g"].T) * (h @ params[f"{l}.u"].T)) @ params[f"{l}.d"].T
        return rms(x, params["lnf"]) @ params["head"].T

    opt = torch.optim.AdamW(params.values(), lr=1e-4)
    ids = torch.randint(0, V - 1, (B, T))

    def step():
        opt.zero_grad()
        if a.objective == "ar":
            logits = forward(ids, True)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        else:
            mask = torch.rand(B, T) < 0.5
            logits = forward(torch.where(mask, V - 1, ids), False)
            loss = F.cross_entropy(logits[mask], ids[mask]) / 0.5
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.time()
    for _ in range(a.steps):
        step()
    dt = (time.time() - t0) / a.steps
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "threads": a.threads,
                      "ms_per_step": dt * 1e3, "tokens_per_s": B * T / dt}))


if __name__ == "__main__":
    main()
