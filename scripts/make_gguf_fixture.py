#!/usr/bin/python3
"""Writes the GGUF test fixtures under tests/fixtures/gguf/ with llama.cpp's
own gguf-py, the way llama.cpp's converter (convert_hf_to_gguf.py,
conversion/llada.py) writes a LLaDA checkpoint, and the Hugging Face folder
they were converted from (the "twin"), so that tests/model/gguf_model_test.cc
can check that dllm reads llama.cpp's files exactly:

  llada_f16.gguf   --outtype f16: 2-D tensors F16, norms F32
  llada_q8_0.gguf  --outtype q8_0: 2-D tensors Q8_0 (gguf-py's quantizer)
  llada_twin/      config.json, model.safetensors (F16), tokenizer.json,
                   tokenizer_config.json

What the converter does and this script repeats (read from llama.cpp's
conversion/llada.py, conversion/base.py, gguf-py/gguf/tensor_mapping.py):
  - names: model.transformer.wte -> token_embd, blocks.N.{attn_norm, q_proj,
    k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, ff_out} ->
    blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
    ffn_gate, ffn_up, ffn_down}, ln_f -> output_norm, ff_out -> output;
  - q_proj and k_proj rows reordered per head for llama.cpp's interleaved
    RoPE (LLaDAModel.permute: reshape(n_head, 2, rows/n_head/2, cols),
    swap axes 1 and 2; k_proj with the key/value head count);
  - 1-D tensors and *_norm.weight stored F32, the rest in the outtype;
  - metadata: block_count, context_length (max_sequence_length),
    embedding_length (d_model), feed_forward_length (mlp_hidden_size),
    head_count, head_count_kv, rope.freq_base, layer_norm_rms_epsilon,
    file_type, vocab_size, rope.dimension_count, attention.causal = false,
    diffusion.shift_logits = false; tokenizer: model gpt2, pre, tokens
    padded to vocab_size with [PADn] (UNUSED), token types (CONTROL for
    special added tokens, USER_DEFINED for the others), merges, special ids
    from tokenizer_config.json, add_bos_token = true, chat template.

The tokenizer is a small byte-level BPE (256 byte tokens, a few merges,
added tokens) with Llama-3's pre-tokenizer regex ("llama-bpe").

Run: /usr/bin/python3 scripts/make_gguf_fixture.py [--llama-cpp DIR]
(DIR holds gguf-py/; default $LLAMA_CPP or ../peers/llama.cpp beside the
checkout). Needs numpy only.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|startoftext|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|startoftext|>assistant\n{% endif %}"
)

# The model: LLaDA layout, grouped-query attention so that k_proj is
# reordered with its own head count, an untied head, a vocabulary larger
# than the tokenizer (padded like LLaDA's 126464).
CONFIG = {
    "architectures": ["LLaDAModelLM"],
    "model_type": "llada",
    "activation_type": "silu",
    "block_type": "llama",
    "layer_norm_type": "rms",
    "rope": True,
    "alibi": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "d_model": 32,
    "n_heads": 4,
    "n_kv_heads": 2,
    "n_layers": 2,
    "mlp_hidden_size": 32,
    "mlp_ratio": 1,
    "vocab_size": 288,
    "embedding_size": 288,
    "max_sequence_length": 256,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "weight_tying": False,
    "use_cache": False,
}


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (byte-level BPE)."""
    bs = (list(range(ord("!"), ord("~") + 1)) +
          list(range(ord("\xa1"), ord("\xac") + 1)) +
          list(range(ord("\xae"), ord("\xff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def make_tokenizer():
    """A byte-level BPE: 256 byte tokens, merges learned greedily on a
    sample text, then added tokens. Returns (vocab, merges, added)."""
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: i for i, b in enumerate(range(256))}
    text = ("ROMEO: But soft, what light through yonder window breaks? "
            "It is the east, and Juliet is the sun. the the then there")
    words = []
    for i, w in enumerate(text.split(" ")):
        piece = ("" if i == 0 else " ") + w
        words.append([b2u[b] for b in piece.encode("utf-8")])
    merges = []
    for _ in range(24):
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merged = best[0] + best[1]
        merges.append(best[0] + " " + best[1])
        vocab[merged] = len(vocab)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [merged]
                else:
                    i += 1
    added = []
    for content, special in (("<|endoftext|>", True), ("<|startoftext|>", True),
                             ("<|mask|>", True), ("<|eot_id|>", True),
                             ("<custom>", False)):
        added.append({"id": len(vocab) + len(added), "content": content,
                      "special": special})
    return vocab, merges, added


def tokenizer_json(vocab, merges, added, bos, bos_id):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": a["id"], "content": a["content"], "single_word": False,
             "lstrip": False, "rstrip": False,
             "normalized": not a["special"], "special": a["special"]}
            for a in added],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False,
             "trim_offsets": True, "use_regex": False}]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                    "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def hf_tensors(rng):
    """The twin's tensors (Hugging Face names, LLaDA layout) as float16."""
    c = CONFIG
    C, F, V = c["d_model"], c["mlp_hidden_size"], c["embedding_size"]
    hd = C // c["n_heads"]
    Q, KV = c["n_heads"] * hd, c["n_kv_heads"] * hd

    def mat(*shape, scale=0.15):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float16)

    t = {"model.transformer.wte.weight": mat(V, C, scale=0.5)}
    for i in range(c["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        t[p + "attn_norm.weight"] = norm(C)
        t[p + "q_proj.weight"] = mat(Q, C)
        t[p + "k_proj.weight"] = mat(KV, C)
        t[p + "v_proj.weight"] = mat(KV, C)
        t[p + "attn_out.weight"] = mat(C, Q)
        t[p + "ff_norm.weight"] = norm(C)
        t[p + "ff_proj.weight"] = mat(F, C)
        t[p + "up_proj.weight"] = mat(F, C)
        t[p + "ff_out.weight"] = mat(C, F)
    t["model.transformer.ln_f.weight"] = norm(C)
    t["model.transformer.ff_out.weight"] = mat(V, C)
    return t


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, a in tensors.items():
        b = a.tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def permute(w, n_head, n_head_kv):
    """conversion/llada.py LLaDAModel.permute, in numpy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_name(hf):
    table = {"attn_norm": "attn_norm", "q_proj": "attn_q", "k_proj": "attn_k",
             "v_proj": "attn_v", "attn_out": "attn_output",
             "ff_norm": "ffn_norm", "ff_proj": "ffn_gate", "up_proj": "ffn_up",
             "ff_out": "ffn_down"}
    if hf == "model.transformer.wte.weight":
        return "token_embd.weight"
    if hf == "model.transformer.ln_f.weight":
        return "output_norm.weight"
    if hf == "model.transformer.ff_out.weight":
        return "output.weight"
    parts = hf.split(".")  # model.transformer.blocks.N.NAME.weight
    return f"blk.{parts[3]}.{table[parts[4]]}.{parts[5]}"


def write_gguf(gguf, path, tensors, vocab, merges, added, outtype):
    c = CONFIG
    w = gguf.GGUFWriter(path, "llada")
    # TextModel.set_type / prepare_metadata.
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("Llada Fixture")
    ftype = (gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16"
             else gguf.LlamaFileType.MOSTLY_Q8_0)
    # TextModel.set_gguf_parameters (base.py), then LLaDAModel's own.
    w.add_block_count(c["n_layers"])
    w.add_context_length(c["max_sequence_length"])
    w.add_head_count(c["n_heads"])
    w.add_head_count_kv(c["n_kv_heads"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_file_type(ftype)
    w.add_vocab_size(c["vocab_size"])
    w.add_rope_dimension_count(c["d_model"] // c["n_heads"])
    w.add_embedding_length(c["d_model"])
    w.add_feed_forward_length(c["mlp_hidden_size"])
    w.add_causal_attention(False)
    w.add_diffusion_shift_logits(False)
    # LLaDAModel.set_vocab: _set_vocab_gpt2 + add_bos_token.
    reverse = {i: t for t, i in vocab.items()}
    added_by_id = {a["id"]: a for a in added}
    tokens, types = [], []
    for i in range(c["vocab_size"]):
        if i in added_by_id:
            tokens.append(added_by_id[i]["content"])
            types.append(gguf.TokenType.CONTROL if added_by_id[i]["special"]
                         else gguf.TokenType.USER_DEFINED)
        elif i in reverse:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    ids = {a["content"]: a["id"] for a in added}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["<|startoftext|>"])
    w.add_eos_token_id(ids["<|endoftext|>"])
    w.add_mask_token_id(ids["<|mask|>"])
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    n_head, n_kv = c["n_heads"], c["n_kv_heads"]
    for hf, a in tensors.items():
        name = gguf_name(hf)
        data = a
        if hf.endswith("q_proj.weight"):
            data = permute(data, n_head, n_head)
        if hf.endswith("k_proj.weight"):
            data = permute(data, n_head, n_kv)
        if data.ndim <= 1 or name.endswith("_norm.weight"):
            w.add_tensor(name, data.astype(np.float32))
        elif outtype == "f16":
            w.add_tensor(name, data.astype(np.float16))
        else:
            q = gguf.quants.quantize(data.astype(np.float32),
                                     gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", default=os.environ.get(
        "LLAMA_CPP", os.path.join(ROOT, "..", "peers", "llama.cpp")),
        help="llama.cpp checkout holding gguf-py/")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures",
                                                  "gguf"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    import gguf  # noqa: E402  (llama.cpp's own writer)

    rng = np.random.default_rng(20240611)
    vocab, merges, added = make_tokenizer()
    tensors = hf_tensors(rng)
    os.makedirs(os.path.join(args.out, "llada_twin"), exist_ok=True)
    twin = os.path.join(args.out, "llada_twin")
    ids = {a["content"]: a["id"] for a in added}
    config = dict(CONFIG, mask_token_id=ids["<|mask|>"],
                  eos_token_id=ids["<|endoftext|>"],
                  bos_token_id=ids["<|startoftext|>"])
    with open(os.path.join(twin, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(twin, "model.safetensors"), tensors)
    with open(os.path.join(twin, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(vocab, merges, added, "<|startoftext|>",
                                 ids["<|startoftext|>"]), f,
                  ensure_ascii=False)
    with open(os.path.join(twin, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE,
                   "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>",
                   "mask_token": "<|mask|>"}, f, indent=2)
        f.write("\n")
    for outtype in ("f16", "q8_0"):
        write_gguf(gguf, os.path.join(args.out, f"llada_{outtype}.gguf"),
                   tensors, vocab, merges, added, outtype)
    for root, _, files in os.walk(args.out):
        for name in sorted(files):
            p = os.path.join(root, name)
            print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
