// Aggregate throughput of `dllm serve` at several concurrencies: each of C
// workers sends completions back to back for a fixed time; prints one JSON
// line per concurrency (requests, completion tokens, tokens/s, mean latency).
// Usage: node load.js http://127.0.0.1:PORT/v1 [seconds=10] [c1,c2,...=1,4,16]
'use strict';
const OpenAI = require('openai');

async function run(client, model, conc, seconds) {
  const end = Date.now() + seconds * 1000;
  let requests = 0, tokens = 0, latency = 0;
  const t0 = Date.now();
  async function worker(w) {
    for (let i = 0; Date.now() < end; ++i) {
      const s = Date.now();
      const r = await client.completions.create({
        model, prompt: 'ROMEO:', max_tokens: 64, temperature: 0.7, seed: w * 1000 + i,
        ban_eos: true,
      });
      latency += Date.now() - s;
      requests += 1;
      tokens += r.usage.completion_tokens;
    }
  }
  await Promise.all(Array.from({ length: conc }, (_, w) => worker(w)));
  const wall = (Date.now() - t0) / 1000;
  return { concurrency: conc, requests, completion_tokens: tokens, seconds: +wall.toFixed(2),
           tokens_per_s: +(tokens / wall).toFixed(1), mean_latency_ms: Math.round(latency / requests) };
}

async function main() {
  const baseURL = process.argv[2];
  const seconds = +(process.argv[3] || 10);
  const concs = (process.argv[4] || '1,4,16').split(',').map(Number);
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 600000 });
  const model = (await client.models.list()).data[0].id;
  for (const c of concs) console.log(JSON.stringify(await run(client, model, c, seconds)));
}
main().catch((e) => { console.error(e); process.exit(1); });
