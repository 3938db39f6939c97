#!/usr/bin/python3
"""Golden bytes for dllm's block quantizers (Q8_0, Q4_0, Q4_K, Q6_K).

How to run (from the repository root; needs numpy, which Debian's
/usr/bin/python3 has, and a llama.cpp checkout with gguf-py and a built
libggml-base.so, by default ../peers/llama.cpp beside the checkout):

    /usr/bin/python3 scripts/make_quant_golden.py            # regenerate
    /usr/bin/python3 scripts/make_quant_golden.py --check    # verify
    /usr/bin/python3 scripts/make_quant_golden.py --llama-cpp DIR

It writes tests/golden_quant/:

    input.f32          ROWS x COLS little-endian float32 rows (edge cases
                       below, seeded, so a rerun reproduces them)
    <type>.bin         the rows quantized, ROWS x row bytes, for type in
                       q8_0 q4_0 q4_k q6_k
    <type>.deq.f32     those bytes dequantized again, ROWS x COLS float32
    manifest.json      rows, cols, the row names, the llama.cpp commit

Where the bytes come from:
  * Q8_0, Q4_0: gguf-py's own quantizers (gguf/quants.py, written to be
    bit-exact with ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref),
    cross-checked against those C functions in libggml-base.so.
  * Q4_K, Q6_K: gguf-py has no quantizer for the K types (only
    dequantizers), so the bytes come from ggml's reference C quantizers,
    quantize_row_q4_K_ref / quantize_row_q6_K_ref, called through ctypes
    in the built libggml-base.so (compiled without -march=native, so no FMA
    contraction, which is also how dllm compiles its reference).
  * Dequantized rows: gguf-py's dequantizers, cross-checked against ggml's
    dequantize_row_* in the same library.
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys

import numpy as np

COLS = 512  # two super-blocks of 256, sixteen blocks of 32
TYPES = ["q8_0", "q4_0", "q4_k", "q6_k"]
ROW_BYTES = {"q8_0": COLS // 32 * 34, "q4_0": COLS // 32 * 18,
             "q4_k": COLS // 256 * 144, "q6_k": COLS // 256 * 210}


def make_rows():
    """The test rows: name -> float32 array of COLS values."""
    rng = np.random.default_rng(20240610)
    normal = lambda: rng.standard_normal(COLS).astype(np.float32)
    rows = []
    rows.append(("normal", normal()))
    rows.append(("zeros", np.zeros(COLS, np.float32)))
    x = normal() * np.float32(0.1)
    x[77] = 1e4
    rows.append(("one_huge", x))
    x = normal()
    x[5] = -8.0
    x[260] = -30.0
    rows.append(("negative_max", x))
    rows.append(("all_positive", rng.uniform(0.5, 2.0, COLS).astype(np.float32)))
    rows.append(("all_negative", rng.uniform(-2.0, -0.5, COLS).astype(np.float32)))
    rows.append(("constant", np.full(COLS, 0.75, np.float32)))
    # Sub-blocks of 32 whose magnitudes span 1e-4 .. 1e3: the 6-bit scales of
    # the small ones round to zero.
    x = normal()
    x *= (10.0 ** ((np.arange(COLS) // 32) % 8 - 4)).astype(np.float32)
    rows.append(("scale_sweep", x))
    # Tiny values: fp16 scales go subnormal or flush to zero.
    rows.append(("tiny", normal() * np.float32(1e-6)))
    # Values on a grid of 1/8: exact ties for the rounding.
    rows.append(("grid", (np.round(normal() * 20) / 8).astype(np.float32)))
    # Half a row of zeros, half normal; a sub-block with a single value.
    x = normal()
    x[:256] = 0
    x[300:332] = 0
    x[310] = 3.0
    rows.append(("sparse", x))
    return rows


class Ggml:
    """ggml's reference quantizers and dequantizers, through ctypes."""

    def __init__(self, lib_path):
        self.lib = ctypes.CDLL(lib_path)
        fp = ctypes.POINTER(ctypes.c_float)
        vp = ctypes.c_void_p
        for name in ("quantize_row_q8_0_ref", "quantize_row_q4_0_ref",
                     "quantize_row_q4_K_ref", "quantize_row_q6_K_ref"):
            getattr(self.lib, name).argtypes = [fp, vp, ctypes.c_int64]
        for name in ("dequantize_row_q8_0", "dequantize_row_q4_0",
                     "dequantize_row_q4_K", "dequantize_row_q6_K"):
            getattr(self.lib, name).argtypes = [vp, fp, ctypes.c_int64]

    _SUFFIX = {"q8_0": "q8_0", "q4_0": "q4_0", "q4_k": "q4_K", "q6_k": "q6_K"}

    def quantize(self, t, x):
        x = np.ascontiguousarray(x, np.float32)
        out = np.zeros(ROW_BYTES[t], np.uint8)
        getattr(self.lib, "quantize_row_%s_ref" % self._SUFFIX[t])(
            x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            out.ctypes.data, COLS)
        return out

    def dequantize(self, t, q):
        q = np.ascontiguousarray(q, np.uint8)
        out = np.zeros(COLS, np.float32)
        getattr(self.lib, "dequantize_row_%s" % self._SUFFIX[t])(
            q.ctypes.data, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            COLS)
        return out


def compute(llama_dir):
    sys.path.insert(0, os.path.join(llama_dir, "gguf-py"))
    from gguf import quants  # noqa: E402
    from gguf.constants import GGMLQuantizationType as Q  # noqa: E402

    lib = None
    for sub in ("build/bin/libggml-base.so", "build/ggml/src/libggml-base.so"):
        p = os.path.join(llama_dir, sub)
        if os.path.exists(p):
            lib = Ggml(p)
            break
    if lib is None:
        sys.exit("make_quant_golden: no libggml-base.so under %s/build "
                 "(build llama.cpp first: cmake -B build && cmake --build build)"
                 % llama_dir)
    qtypes = {"q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_k": Q.Q4_K, "q6_k": Q.Q6_K}
    rows = make_rows()
    out = {"input": np.stack([x for _, x in rows])}
    for t in TYPES:
        qs, deqs = [], []
        for name, x in rows:
            c_bytes = lib.quantize(t, x)
            if t in ("q8_0", "q4_0"):
                py_bytes = quants.quantize(x.reshape(1, COLS), qtypes[t])
                py_bytes = np.asarray(py_bytes, np.uint8).reshape(-1)
                if not np.array_equal(py_bytes, c_bytes):
                    sys.exit("make_quant_golden: gguf-py and ggml disagree on "
                             "%s of row %s" % (t, name))
                q = py_bytes
            else:
                q = c_bytes
            deq = quants.dequantize(q.reshape(1, -1), qtypes[t])
            deq = np.asarray(deq, np.float32).reshape(-1)
            c_deq = lib.dequantize(t, q)
            if not np.array_equal(deq.view(np.uint32), c_deq.view(np.uint32)):
                sys.exit("make_quant_golden: gguf-py and ggml dequantize %s of "
                         "row %s differently" % (t, name))
            qs.append(q)
            deqs.append(deq)
        out[t] = np.stack(qs)
        out[t + ".deq"] = np.stack(deqs)
    names = [name for name, _ in rows]
    return names, out


def llama_commit(llama_dir):
    try:
        return subprocess.run(["git", "-C", llama_dir, "rev-parse", "HEAD"],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def files(out):
    yield "input.f32", out["input"].astype("<f4").tobytes()
    for t in TYPES:
        yield t + ".bin", out[t].astype(np.uint8).tobytes()
        yield t + ".deq.f32", out[t + ".deq"].astype("<f4").tobytes()


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp",
                    default=os.path.join(os.path.dirname(root), "peers",
                                         "llama.cpp"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "golden_quant"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    names, out = compute(args.llama_cpp)
    if args.check:
        bad = 0
        for name, data in files(out):
            with open(os.path.join(args.out, name), "rb") as f:
                if f.read() != data:
                    print("differs:", name)
                    bad += 1
        print("make_quant_golden: %s" % ("ok" if not bad else "%d files differ" % bad))
        sys.exit(1 if bad else 0)
    os.makedirs(args.out, exist_ok=True)
    for name, data in files(out):
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
    manifest = {"rows": len(names), "cols": COLS, "row_names": names,
                "types": TYPES, "row_bytes": ROW_BYTES,
                "llama_cpp_commit": llama_commit(args.llama_cpp)}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("make_quant_golden: wrote %d rows x %d to %s" % (len(names), COLS, args.out))


if __name__ == "__main__":
    main()
