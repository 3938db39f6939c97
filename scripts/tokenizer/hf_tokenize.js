#!/usr/bin/env node
// Reference side of dllm's tokenizer parity tests and benchmark, through the
// Hugging Face `tokenizers` library (npm, wraps the Rust crate).
//
//   node hf_tokenize.js encode TOKENIZER_JSON TEXTS_BIN OUT_JSON [--add-special]
//     TEXTS_BIN: texts as [u32 little-endian byte length][bytes]...; each is
//     decoded as UTF-8 with U+FFFD replacement (WHATWG TextDecoder), encoded,
//     and decoded back. OUT_JSON: {"ids": [[...]], "decoded": [...],
//     "decoded_skip": [...]}.
//   node hf_tokenize.js bench TOKENIZER_JSON TEXT_FILE [REPEATS]
//     Prints {"mb_per_s": ..., "seconds": ..., "bytes": ..., "tokens": ...}:
//     best of REPEATS single-threaded encodes of the whole file.
'use strict';
process.env.RAYON_NUM_THREADS = process.env.RAYON_NUM_THREADS || '1';
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

function readTexts(path) {
  const buf = fs.readFileSync(path);
  const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const texts = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const n = buf.readUInt32LE(off);
    off += 4;
    texts.push(dec.decode(buf.subarray(off, off + n)));
    off += n;
  }
  return texts;
}

async function main() {
  const [mode, tokPath, inPath, outPath, flag] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  if (mode === 'encode') {
    const addSpecial = flag === '--add-special';
    const texts = readTexts(inPath);
    const ids = [], decoded = [], decodedSkip = [];
    for (const t of texts) {
      const enc = await tok.encode(t, null, { addSpecialTokens: addSpecial });
      const x = Array.from(enc.getIds());
      ids.push(x);
      decoded.push(await tok.decode(x, false));
      decodedSkip.push(await tok.decode(x, true));
    }
    fs.writeFileSync(outPath, JSON.stringify({ ids, decoded, decoded_skip: decodedSkip }));
  } else if (mode === 'bench') {
    const text = fs.readFileSync(inPath, 'utf8');
    const bytes = Buffer.byteLength(text, 'utf8');
    const repeats = parseInt(outPath || '3', 10);
    let best = Infinity, tokens = 0;
    for (let r = 0; r < repeats; ++r) {
      const t0 = process.hrtime.bigint();
      const enc = await tok.encode(text, null, { addSpecialTokens: false });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      tokens = enc.getIds().length;
      best = Math.min(best, s);
    }
    console.log(JSON.stringify({ mb_per_s: bytes / 1e6 / best, seconds: best, bytes, tokens }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
