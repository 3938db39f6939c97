#!/usr/bin/env node
// Reference side of dllm's chat-template parity tests: renders a template with
// @huggingface/jinja (the Jinja engine of transformers.js and the Hub).
//
//   node hf_jinja.js TEMPLATE_FILE CONTEXTS_JSON OUT_JSON
//     CONTEXTS_JSON: a JSON array of variable objects. OUT_JSON: an array with,
//     per context, {"text": rendered} or {"error": message}.
'use strict';
const fs = require('fs');
const { Template } = require('@huggingface/jinja');

const [tmplPath, ctxPath, outPath] = process.argv.slice(2);
const template = new Template(fs.readFileSync(tmplPath, 'utf8'));
const contexts = JSON.parse(fs.readFileSync(ctxPath, 'utf8'));
const out = contexts.map((ctx) => {
  try {
    return { text: template.render(ctx) };
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
});
fs.writeFileSync(outPath, JSON.stringify(out));
