// Drives the page `dllm serve` answers at `/` in headless Chromium, as a
// person would: types a prompt and settings, clicks Generate, watches the
// canvas denoise, reads the answer and its tokens/s; then one chat turn.
// The browser is driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-terminated JSON messages on fds 3 and 4), so
// nothing beyond Node is needed.
//
// Usage: node web_page_test.js http://127.0.0.1:PORT [--chromium PATH]
//        node web_page_test.js http://127.0.0.1:PORT --screenshot FILE.png
//             [--prompt TEXT] [--max-tokens N]
// The first exits non-zero on the first failed check (tests/server/
// web_page_test.cc runs it); the second saves a picture of the page taken
// in the middle of a generation (docs/serve_page.png).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const assert = require('assert');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// A DevTools protocol connection over Chromium's debugging pipe.
class Cdp {
  constructor(proc) {
    this.out = proc.stdio[3];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Set();
    let buf = Buffer.alloc(0);
    proc.stdio[4].on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let end;
      while ((end = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
        buf = buf.subarray(end + 1);
        this.dispatch(msg);
      }
    });
  }
  dispatch(msg) {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(p.method + ': ' + msg.error.message));
      else p.resolve(msg.result);
      return;
    }
    for (const l of this.listeners) l(msg);
  }
  send(method, params = {}, sessionId = undefined) {
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    this.out.write(JSON.stringify(msg) + '\0');
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
  }
  // The next event `method` (of the session) for which pred(params) holds.
  event(method, sessionId, pred = () => true, ms = 30000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        reject(new Error('timed out waiting for ' + method));
      }, ms);
      const l = (msg) => {
        if (msg.method !== method || msg.sessionId !== sessionId || !pred(msg.params)) return;
        clearTimeout(timer);
        this.listeners.delete(l);
        resolve(msg.params);
      };
      this.listeners.add(l);
    });
  }
}

// One tab: evaluate, wait, click and type through the protocol.
class Page {
  constructor(cdp, sessionId) {
    this.cdp = cdp;
    this.sid = sessionId;
  }
  send(method, params) { return this.cdp.send(method, params, this.sid); }
  async eval(expression) {
    const r = await this.send('Runtime.evaluate',
                              { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails)
      throw new Error('in the page: ' + (r.exceptionDetails.exception
        ? r.exceptionDetails.exception.description : r.exceptionDetails.text));
    return r.result.value;
  }
  async waitUntil(expression, what, ms = 60000) {
    const until = Date.now() + ms;
    for (;;) {
      const v = await this.eval(expression);
      if (v) return v;
      if (Date.now() > until) throw new Error('timed out waiting for ' + what);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  // A left click in the middle of the element, with the mouse.
  async click(selector) {
    const [x, y] = await this.eval(`(() => {
      const e = document.querySelector(${JSON.stringify(selector)});
      e.scrollIntoView({ block: 'center' });
      const r = e.getBoundingClientRect();
      return [r.x + r.width / 2, r.y + r.height / 2];
    })()`);
    for (const type of ['mousePressed', 'mouseReleased'])
      await this.send('Input.dispatchMouseEvent', { type, x, y, button: 'left', clickCount: 1 });
  }
  // Clicks into a field, selects what it holds and types `text` over it.
  async type(selector, text) {
    await this.click(selector);
    await this.eval(`document.querySelector(${JSON.stringify(selector)}).select()`);
    await this.send('Input.insertText', { text });
  }
}

async function openBrowser(chromium) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dllm-chromium-'));
  const proc = spawn(chromium, [
    '--headless=new', '--remote-debugging-pipe', '--no-sandbox', '--disable-gpu',
    '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-sync',
    '--user-data-dir=' + profile, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const cdp = new Cdp(proc);
  const close = async () => {
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    // Chromium's helper processes can still be writing into the profile
    // for a moment after the browser process exits (ENOTEMPTY on rmdir):
    // retry, and never fail the test over a temporary folder.
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    } catch (e) {
      console.error(`web page: could not remove ${profile}: ${e.message}`);
    }
  };
  try {
    await Promise.race([
      cdp.send('Browser.getVersion'),
      exited.then(() => { throw new Error('chromium exited:\n' + stderr); }),
    ]);
  } catch (e) {
    await close();
    throw e;
  }
  return { cdp, close };
}

async function openPage(cdp, url, width, height) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const page = new Page(cdp, sessionId);
  await page.send('Page.enable');
  await page.send('Runtime.enable');
  await page.send('Emulation.setDeviceMetricsOverride',
                  { width, height, deviceScaleFactor: 1, mobile: false });
  const loaded = cdp.event('Page.loadEventFired', sessionId);
  await page.send('Page.navigate', { url });
  await loaded;
  // /props answered: the page knows the model.
  await page.waitUntil(`!document.getElementById('model').textContent.startsWith('connecting')`,
                       'the page to load the model\'s properties', 15000);
  return page;
}

// Records the number of masked cells each time the canvas changes (a
// MutationObserver runs after every render, before the page reads on).
const WATCH_CANVAS = `(() => {
  window.__masks = [];
  const cv = document.getElementById('canvas');
  new MutationObserver(() => {
    window.__masks.push(cv.querySelectorAll('.mask').length);
  }).observe(cv, { childList: true, subtree: true, characterData: true });
})()`;

const FINISHED = `(() => {
  const err = document.getElementById('error').textContent;
  if (err) return 'error: ' + err;
  return /tokens\\/s/.test(document.getElementById('stats').textContent) &&
         !document.getElementById('go').disabled;
})()`;

async function checkPage(page, base) {
  const settings = { max_tokens: '24', steps: '24', seed: '7', temperature: '0.8' };
  for (const [id, v] of Object.entries(settings)) await page.type('#' + id, v);
  await page.type('#prompt', 'hello there');
  await page.eval(WATCH_CANVAS);
  await page.click('#go');
  const done = await page.waitUntil(FINISHED, 'the answer and its tokens/s');
  assert.strictEqual(done, true, String(done));

  const masks = await page.eval('window.__masks');
  const changes = masks.filter((m, i) => i === 0 || m !== masks[i - 1]);
  console.log('canvas states (masked cells):', masks.join(' '));
  assert.ok(changes.length >= 3, 'the canvas changed fewer than twice: ' + masks);
  for (let i = 1; i < masks.length; ++i)
    assert.ok(masks[i] <= masks[i - 1], 'masked cells grew: ' + masks);
  assert.ok(masks[0] > masks[masks.length - 1], 'masked cells did not decrease: ' + masks);
  assert.strictEqual(masks[0], 24, 'the first canvas is not all masks: ' + masks);

  const answer = await page.eval(`document.getElementById('answer').textContent`);
  const stats = await page.eval(`document.getElementById('stats').textContent`);
  console.log('answer:', JSON.stringify(answer));
  console.log('stats:', stats);
  assert.ok(answer.length > 0, 'no answer shown');
  assert.match(stats, /^\d+ tokens · \d+ steps · [\d.]+ s · [\d.]+ tokens\/s/);
  const tps = parseFloat(stats.match(/([\d.]+) tokens\/s/)[1]);
  assert.ok(tps > 0 && isFinite(tps), 'tokens/s is ' + tps);
  // The page shows what the API answers for the same request.
  const r = await fetch(base + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: 'hello there', max_tokens: 24, steps: 24, seed: 7,
                           temperature: 0.8 }),
  });
  const j = await r.json();
  assert.strictEqual(answer, j.choices[0].text, 'the page and the API differ');
  // The last canvas shown is the answer's tokens.
  const canvasText = await page.eval(
      `[...document.querySelectorAll('#canvas .tok')].map((e) => e.textContent).join('')`);
  assert.ok(canvasText.replace(/\u21b5/g, '').startsWith(answer), canvasText);

  // A chat turn: the conversation log gets the question and the answer.
  await page.click('#mode-chat');
  await page.type('#prompt', 'how are you?');
  await page.eval(WATCH_CANVAS);
  await page.click('#go');
  const chatDone = await page.waitUntil(FINISHED, 'the chat answer');
  assert.strictEqual(chatDone, true, String(chatDone));
  const turns = await page.eval(
      `[...document.querySelectorAll('#log .turn')].map((e) => e.className)`);
  assert.deepStrictEqual(turns, ['turn user', 'turn assistant']);
  const chatMasks = await page.eval('window.__masks');
  assert.ok(chatMasks.length >= 2 && chatMasks[0] > chatMasks[chatMasks.length - 1],
            'chat canvas: ' + chatMasks);
  // A bad setting comes back as the server's error message.
  await page.click('#mode-completion');
  await page.type('#max_tokens', '0');
  await page.click('#go');
  const err = await page.waitUntil(`document.getElementById('error').textContent`,
                                   'the error message');
  assert.match(err, /max_tokens/);
}

// A picture of the page while the canvas is half denoised: the capture is
// asked for when about half the cells are still masked.
async function screenshot(page, file) {
  await page.type('#max_tokens', arg('--max-tokens', '192'));
  await page.type('#seed', '1');
  await page.type('#prompt', arg('--prompt', 'ROMEO:'));
  await page.send('Runtime.addBinding', { name: '__halfway' });
  await page.eval(`(() => {
    const cv = document.getElementById('canvas');
    let sent = false;
    new MutationObserver(() => {
      const all = cv.querySelectorAll('.mask, .tok').length;
      const masked = cv.querySelectorAll('.mask').length;
      if (!sent && all > 0 && masked <= all * 0.55) { sent = true; __halfway('go'); }
    }).observe(cv, { childList: true });
  })()`);
  const halfway = page.cdp.event('Runtime.bindingCalled', page.sid);
  await page.click('#go');
  await halfway;
  const shot = await page.send('Page.captureScreenshot', { format: 'png' });
  fs.writeFileSync(file, Buffer.from(shot.data, 'base64'));
  const masked = await page.eval(`document.querySelectorAll('#canvas .mask').length`);
  console.log('saved ' + file + ' (' + fs.statSync(file).size + ' bytes; ' + masked +
              ' cells masked just after the capture)');
  await page.waitUntil(FINISHED, 'the end of the generation');
}

async function main() {
  const base = process.argv[2];
  if (!base || base.startsWith('--')) throw new Error('usage: node web_page_test.js URL ...');
  const chromium = arg('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
  const shot = arg('--screenshot', '');
  const { cdp, close } = await openBrowser(chromium);
  try {
    const page = await openPage(cdp, base + '/', 1100, shot ? 780 : 900);
    if (shot) {
      await screenshot(page, shot);
    } else {
      await checkPage(page, base);
      console.log('web page: all checks passed');
    }
  } finally {
    await close();
  }
}

main().catch((e) => {
  console.error('web page: FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
