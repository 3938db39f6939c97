// Load test of `dllm serve`: many concurrent clients on loopback, every
// answer checked for completeness, one JSON line of results.
//
//   # 64 clients x 1,000 requests each against a tiny random model (made here)
//   node scripts/server/load.js --model tiny --clients 64 --requests 1000
//   # aggregate tokens/s at several concurrencies on the shipped model
//   node scripts/server/load.js --model models/shakespeare-bd --sweep 1,4,16,64 --seconds 20
//   # against a server already running (no peak RSS unless --pid)
//   node scripts/server/load.js --url http://127.0.0.1:8080 --clients 8 --requests 10
//
// Options: --dllm PATH (default build/dllm), --serve-args "..." (default
// "--max-batch 64 --max-queue 64"), --max-tokens N (16; 64 in a sweep),
// --stream-every K (every K-th request is streamed; default 4, 0 = none),
// --max-seconds S (stop sending after S seconds; default 900).
// Every request asks for max_tokens with ban_eos, so a complete answer has
// status 200, finish_reason "length" and usage adding up to at most
// max_tokens (streams: the usage chunk and [DONE] too); answers shorter
// than max_tokens are counted apart (short_answers). Results: 5xx, 4xx,
// network errors and incomplete answers counted, p50/p99 latency,
// requests/s, tokens/s, the batch the server ran (from /metrics) and, when
// this script started the server, its peak RSS (VmHWM).
'use strict';
const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

function opt(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const root = path.resolve(__dirname, '..', '..');

// A 2-layer, width-32 random model with the shipped models' tokenizer.
function makeTinyModel(dllm) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dllm-load-'));
  const m = path.join(dir, 'tiny');
  execFileSync(dllm, ['init', '--layers', '2', '--d-model', '32', '--heads', '4', '--ffn', '64',
                      '--vocab', '2048', '--ctx', '256', '--mask-id', '1', '--eos-id', '0', '-o', m],
               { stdio: 'ignore' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(root, 'models/shakespeare-mdm', f), path.join(m, f));
  return { model: m, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// Starts `dllm serve` on a free loopback port; resolves once it listens.
function startServer(dllm, model, extra) {
  const args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', '--quiet',
                ...extra.split(/\s+/).filter(Boolean)];
  const proc = spawn(dllm, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((r) => proc.on('exit', r));
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('dllm serve did not start:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, exited, url: 'http://127.0.0.1:' + m[1] });
      }
    });
    proc.on('exit', (code) => reject(new Error('dllm serve exited (' + code + '):\n' + log)));
  });
}

function peakRssMb(pid) {
  try {
    const m = fs.readFileSync('/proc/' + pid + '/status', 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? +(m[1] / 1024).toFixed(1) : null;
  } catch (e) {
    return null;
  }
}

function request(agent, url, method, body) {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method, agent, headers: body ? { 'Content-Type': 'application/json' } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.setTimeout(600000, () => req.destroy(new Error('timeout')));
    if (body) req.write(body);
    req.end();
  });
}

async function metrics(agent, base) {
  const r = await request(agent, base + '/metrics', 'GET');
  const out = {};
  for (const line of r.body.split('\n')) {
    const m = line.match(/^(dllm_\w+) ([\d.e+-]+)$/);
    if (m) out[m[1]] = +m[2];
  }
  return out;
}

// The completion tokens of a whole answer (status 200, one finish_reason
// "length", usage adding up, a stream's usage chunk and [DONE]), else -1.
function completeTokens(r, stream, maxTokens) {
  if (r.status !== 200) return -1;
  try {
    let reason, usage, text = '';
    if (!stream) {
      const j = JSON.parse(r.body);
      reason = j.choices[0].finish_reason;
      usage = j.usage;
      text = j.choices[0].text;
    } else {
      const events = r.body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
      if (events[events.length - 1] !== '[DONE]') return -1;
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      if (chunks.some((c) => c.error)) return -1;
      usage = chunks[chunks.length - 1].usage;
      const reasons = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
      if (reasons.length !== 1) return -1;
      reason = reasons[0].choices[0].finish_reason;
      for (const c of chunks) if (c.choices.length) text += c.choices[0].text;
    }
    const ok = reason === 'length' && typeof text === 'string' && usage &&
               usage.completion_tokens >= 1 && usage.completion_tokens <= maxTokens &&
               usage.total_tokens === usage.prompt_tokens + usage.completion_tokens;
    return ok ? usage.completion_tokens : -1;
  } catch (e) {
    return -1;
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// `clients` workers send requests back to back until each has sent
// `perClient` or `seconds` have passed.
async function run(agent, base, model, { clients, perClient, seconds, maxTokens, streamEvery }) {
  const stats = { ok: 0, s5xx: 0, s4xx: 0, network: 0, incomplete: 0, short: 0, tokens: 0,
                  latencies: [] };
  const firstErrors = [], firstShort = [];
  const end = Date.now() + seconds * 1000;
  const t0 = Date.now();
  let sent = 0;
  async function worker(w) {
    for (let i = 0; i < perClient && Date.now() < end; ++i) {
      const stream = streamEvery > 0 && (sent++ % streamEvery) === streamEvery - 1;
      const body = { model, prompt: 'ROMEO:', max_tokens: maxTokens, temperature: 0.7,
                     seed: w * 100000 + i, ban_eos: true };
      if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
      const s = Date.now();
      const r = await request(agent, base + '/v1/completions', 'POST', JSON.stringify(body));
      stats.latencies.push(Date.now() - s);
      if (r.status === 0) stats.network++;
      else if (r.status >= 500) stats.s5xx++;
      else if (r.status >= 400) stats.s4xx++;
      if (r.status !== 200 && firstErrors.length < 3) firstErrors.push(r.status + ' ' + r.body.slice(0, 200));
      const n = completeTokens(r, stream, maxTokens);
      if (n > 0) {
        stats.ok++;
        stats.tokens += n;
        // Shorter than asked (ban_eos): a position still masked at the end,
        // where the model chose [MASK] itself at its last step.
        if (n < maxTokens) {
          stats.short++;
          if (firstShort.length < 3) firstShort.push(body.seed);
        }
      } else if (r.status === 200) {
        stats.incomplete++;
        if (firstErrors.length < 3) firstErrors.push('incomplete: ' + r.body.slice(0, 300));
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
  const wall = (Date.now() - t0) / 1000;
  const lat = stats.latencies.sort((a, b) => a - b);
  return {
    requests: lat.length, complete: stats.ok, status_5xx: stats.s5xx, status_4xx: stats.s4xx,
    network_errors: stats.network, incomplete: stats.incomplete,
    short_answers: stats.short, short_seeds: firstShort, seconds: +wall.toFixed(2),
    requests_per_s: +(lat.length / wall).toFixed(1), tokens_per_s: +(stats.tokens / wall).toFixed(1),
    latency_ms: { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: lat[lat.length - 1] },
    first_errors: firstErrors,
  };
}

async function main() {
  const dllm = opt('dllm', path.join(root, 'build/dllm'));
  const sweep = opt('sweep', '');
  const maxTokens = +opt('max-tokens', sweep ? 64 : 16);
  const streamEvery = +opt('stream-every', 4);
  const maxSeconds = +opt('max-seconds', 900);
  let base = opt('url', '');
  let server = null, tiny = null;
  if (!base) {
    let model = opt('model', 'tiny');
    if (model === 'tiny') {
      tiny = makeTinyModel(dllm);
      model = tiny.model;
    }
    server = await startServer(dllm, model, opt('serve-args', '--max-batch 64 --max-queue 64'));
    base = server.url;
  }
  const pid = server ? server.proc.pid : +opt('pid', 0);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  let failed = false;
  try {
    const model = JSON.parse((await request(agent, base + '/v1/models', 'GET')).body).data[0].id;
    const rounds = sweep ? sweep.split(',').map(Number) : [+opt('clients', 64)];
    for (const clients of rounds) {
      const m0 = await metrics(agent, base);
      const r = await run(agent, base, model, {
        clients, maxTokens, streamEvery: sweep ? 0 : streamEvery,
        perClient: sweep ? Infinity : +opt('requests', 1000),
        seconds: sweep ? +opt('seconds', 20) : maxSeconds,
      });
      const m1 = await metrics(agent, base);
      const steps = m1.dllm_steps_total - m0.dllm_steps_total;
      const out = {
        model, clients, max_tokens: maxTokens, ...r,
        mean_batch: steps > 0 ? +((m1.dllm_step_sequences_total - m0.dllm_step_sequences_total) / steps).toFixed(2) : 0,
        ms_per_step: steps > 0 ? +((m1.dllm_step_seconds_total - m0.dllm_step_seconds_total) * 1000 / steps).toFixed(2) : 0,
        server_peak_rss_mb: pid ? peakRssMb(pid) : null,
      };
      if (!out.first_errors.length) delete out.first_errors;
      if (!out.short_seeds.length) delete out.short_seeds;
      console.log(JSON.stringify(out));
      failed = failed || r.status_5xx > 0 || r.network_errors > 0 || r.incomplete > 0;
    }
  } finally {
    agent.destroy();
    if (server) {
      server.proc.kill('SIGTERM');
      await server.exited;
    }
    if (tiny) tiny.cleanup();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error('load: FAILED:', e && e.stack ? e.stack : e); process.exit(1); });
