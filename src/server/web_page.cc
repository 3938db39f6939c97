// The live view at `/` (see web_page.h). Plain HTML, CSS and JavaScript in
// one raw string, so the binary serves it with no files beside it.
#include "server/web_page.h"

namespace dllm::server {

const char kWebPage[] = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dllm</title>
<style>
  :root { --fg: #1f2328; --muted: #6e7781; --line: #d0d7de; --bg: #f6f8fa;
          --mask: #c4cad1; --new: #ffd33d; --accent: #0969da; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: #fff; }
  header { display: flex; gap: 12px; align-items: baseline; padding: 10px 20px;
           border-bottom: 1px solid var(--line); background: var(--bg); }
  header h1 { margin: 0; font-size: 18px; }
  header .muted { color: var(--muted); font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 250px; gap: 20px;
         padding: 16px 20px; max-width: 1150px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
       margin: 14px 0 6px; }
  textarea { width: 100%; min-height: 70px; padding: 8px; font: inherit;
             border: 1px solid var(--line); border-radius: 6px; resize: vertical; }
  .row { display: flex; gap: 8px; align-items: center; margin-top: 8px; }
  button { font: inherit; padding: 5px 14px; border-radius: 6px; border: 1px solid var(--line);
           background: var(--bg); cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  #canvas { font: 14px/1.7 "DejaVu Sans Mono", ui-monospace, monospace; white-space: pre-wrap;
            word-break: break-word; min-height: 90px; padding: 10px 12px;
            border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
  #canvas .prompt { font-weight: bold; }
  #canvas .mask { color: var(--mask); }
  #canvas .new { background: var(--new); border-radius: 2px; }
  #status, #stats { font: 13px "DejaVu Sans Mono", ui-monospace, monospace; color: var(--muted);
                    min-height: 1.4em; }
  #stats { color: var(--fg); font-weight: bold; }
  #answer { white-space: pre-wrap; min-height: 1.5em; padding: 8px 12px;
            border-left: 3px solid var(--accent); background: #fff; }
  #error { color: #cf222e; white-space: pre-wrap; }
  #log .turn { white-space: pre-wrap; padding: 4px 10px; margin: 4px 0; border-radius: 6px; }
  #log .user { background: #ddf4ff; }
  #log .assistant { background: var(--bg); }
  #replay { flex: 1; }
  aside label { display: block; font-size: 13px; color: var(--muted); margin-top: 8px; }
  aside input, aside select { width: 100%; font: inherit; padding: 4px 6px;
                              border: 1px solid var(--line); border-radius: 6px; }
  .modes label { margin-right: 12px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>dllm</h1><span id="model" class="muted">connecting...</span>
  <span class="muted">a masked-diffusion language model: every step unmasks some positions of the canvas</span>
</header>
<main>
<section>
  <div class="modes">
    <label><input type="radio" name="mode" id="mode-completion" checked> completion</label>
    <label id="chat-label"><input type="radio" name="mode" id="mode-chat"> chat</label>
    <button id="new-chat" hidden>new chat</button>
  </div>
  <div id="log"></div>
  <textarea id="prompt" placeholder="ROMEO:"></textarea>
  <div class="row">
    <button id="go" class="primary">Generate</button>
    <button id="stop" disabled>Stop</button>
    <span class="muted" style="font-size:13px">Ctrl+Enter generates</span>
  </div>
  <h2>Canvas</h2>
  <div id="canvas"></div>
  <div class="row">
    <span id="status"></span>
  </div>
  <div class="row" id="replay-row" hidden>
    <button id="play">replay</button>
    <input type="range" id="replay" min="0" max="0" value="0">
  </div>
  <h2>Answer</h2>
  <div id="answer"></div>
  <div id="stats"></div>
  <div id="error"></div>
</section>
<aside>
  <h2>Settings</h2>
  <p class="muted" style="font-size:13px;margin:0">Empty fields take the model's defaults.</p>
  <label>max tokens <input id="max_tokens" inputmode="numeric"></label>
  <label>steps <input id="steps" inputmode="numeric"></label>
  <label>block length <input id="block_length" inputmode="numeric"></label>
  <label>sampler
    <select id="sampler">
      <option value="">model default</option>
      <option>low-confidence</option><option>random</option><option>maskgit-plus</option>
      <option>topk-margin</option><option>entropy</option><option>origin</option>
    </select></label>
  <label>temperature <input id="temperature" inputmode="decimal"></label>
  <label>threshold (Fast-dLLM) <input id="threshold" inputmode="decimal" placeholder="off"></label>
  <label>seed <input id="seed" inputmode="numeric"></label>
  <label id="key-row" hidden>API key <input id="apikey" type="password"></label>
</aside>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
// Request fields taken from the settings, by input id.
const FIELDS = ['max_tokens', 'steps', 'block_length', 'temperature', 'threshold', 'seed'];
let busy = null;      // the AbortController of the running request
let frames = [];      // every canvas of the last generation, for the replay
let prefix = '';      // the prompt, shown in front of the canvas
let history = [];     // chat turns so far
let player = null;

function chatMode() { return $('mode-chat').checked; }

async function loadProps() {
  try {
    const p = await (await fetch('/props')).json();
    $('model').textContent = p.model + ' \u00b7 context ' + p.context_length;
    const d = p.default_generation_settings || {};
    const shown = { max_tokens: d.gen_length, steps: d.steps, temperature: d.temperature,
                    seed: d.seed, block_length: d.block_length || 'one block' };
    for (const k of Object.keys(shown)) if (shown[k] !== undefined) $(k).placeholder = shown[k];
    // Steps follow max tokens unless given (one token per step by default).
    $('max_tokens').oninput = () => { $('steps').placeholder = $('max_tokens').value.trim() || d.steps; };
    if (d.schedule === 'threshold') $('threshold').placeholder = d.threshold;
    if (d.sampler) $('sampler').options[0].textContent = 'model default (' + d.sampler + ')';
    if (!p.chat) {
      $('mode-chat').disabled = true;
      $('chat-label').title = 'this model has no chat template';
    }
    $('key-row').hidden = !p.api_key_required;
  } catch (e) {
    $('error').textContent = 'cannot reach the server: ' + e.message;
  }
}

function requestBody() {
  const b = { stream: true, diffusing: true, stream_options: { include_usage: true } };
  for (const k of FIELDS) {
    const v = $(k).value.trim();
    // A typo goes as written, so that the server's error names the field.
    if (v !== '') b[k] = isNaN(Number(v)) ? v : Number(v);
  }
  if ($('sampler').value) b.sampler = $('sampler').value;
  const text = $('prompt').value;
  if (chatMode()) b.messages = history.concat([{ role: 'user', content: text }]);
  else b.prompt = text;
  return b;
}

// Server-sent events of a fetch() response: {event, data} per event.
async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
      }
      if (data) yield { event, data };
    }
  }
}

function cell(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

// One canvas: masks dimmed, the tokens committed at this step highlighted.
function renderFrame(f) {
  const fresh = new Set(f.committed);
  const cells = prefix ? [cell('prompt', prefix)] : [];
  f.tokens.forEach((t, i) => {
    // A zero-width space after each mask lets a run of masks wrap anywhere.
    if (t === null) cells.push(cell('mask', '\u2591\u200b'));
    else cells.push(cell(fresh.has(i) ? 'tok new' : 'tok', t.replace(/\n/g, '\u21b5\n')));
  });
  $('canvas').replaceChildren(...cells);
  $('status').textContent = 'step ' + f.step + '/' + f.total_steps + ' \u00b7 masked ' +
      f.masked + ' \u00b7 +' + f.committed.length;
}

function renderLog() {
  $('log').replaceChildren(...history.map((m) => cell('turn ' + m.role, m.content)));
}

async function generate() {
  if (busy) return;
  const chat = chatMode();
  const body = requestBody();
  busy = new AbortController();
  $('go').disabled = true;
  $('stop').disabled = false;
  $('error').textContent = $('answer').textContent = $('stats').textContent = '';
  $('replay-row').hidden = true;
  frames = [];
  prefix = chat ? '' : body.prompt;
  const headers = { 'Content-Type': 'application/json' };
  if ($('apikey').value) headers.Authorization = 'Bearer ' + $('apikey').value;
  const t0 = performance.now();
  try {
    const r = await fetch(chat ? '/v1/chat/completions' : '/v1/completions',
                          { method: 'POST', headers, body: JSON.stringify(body), signal: busy.signal });
    if (!r.ok) {
      const e = await r.json().catch(() => null);
      throw new Error((e && e.error && e.error.message) || 'HTTP ' + r.status);
    }
    let text = '', usage = null, reason = null;
    for await (const ev of sse(r)) {
      if (ev.data === '[DONE]') break;
      const j = JSON.parse(ev.data);
      if (ev.event === 'canvas') {
        frames.push(j);
        renderFrame(j);
        continue;
      }
      if (j.error) throw new Error(j.error.message);
      if (j.usage) usage = j.usage;
      const c = j.choices && j.choices[0];
      if (!c) continue;
      text += chat ? (c.delta.content || '') : (c.text || '');
      if (c.finish_reason) reason = c.finish_reason;
      $('answer').textContent = text;
    }
    const last = frames[frames.length - 1];
    const n = usage ? usage.completion_tokens : 0;
    const secs = last && last.elapsed_ms > 0 ? last.elapsed_ms / 1000 : (performance.now() - t0) / 1000;
    $('stats').textContent = n + ' tokens \u00b7 ' + (last ? last.step : 0) + ' steps \u00b7 ' +
        secs.toFixed(2) + ' s \u00b7 ' + (n / secs).toFixed(1) + ' tokens/s \u00b7 finish: ' + reason;
    if (chat) {
      history = body.messages.concat([{ role: 'assistant', content: text }]);
      renderLog();
      $('prompt').value = '';
    }
    if (frames.length > 1) {
      $('replay').max = frames.length - 1;
      $('replay').value = frames.length - 1;
      $('replay-row').hidden = false;
    }
  } catch (e) {
    if (e.name !== 'AbortError') $('error').textContent = e.message;
    else $('status').textContent += ' \u00b7 stopped';
  } finally {
    busy = null;
    $('go').disabled = false;
    $('stop').disabled = true;
  }
}

function replay() {
  clearInterval(player);
  let i = 0;
  player = setInterval(() => {
    if (i >= frames.length) return clearInterval(player);
    $('replay').value = i;
    renderFrame(frames[i++]);
  }, 60);
}

$('go').onclick = generate;
$('stop').onclick = () => busy && busy.abort();
$('play').onclick = replay;
$('replay').oninput = () => { clearInterval(player); renderFrame(frames[+$('replay').value]); };
$('prompt').onkeydown = (e) => { if (e.key === 'Enter' && e.ctrlKey) generate(); };
for (const id of ['mode-chat', 'mode-completion'])
  $(id).onchange = () => { $('new-chat').hidden = !chatMode(); $('log').hidden = !chatMode(); };
$('new-chat').onclick = () => { history = []; renderLog(); };
loadProps();
</script>
</body>
</html>
)page";

}  // namespace dllm::server
