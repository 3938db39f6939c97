// Drives `dllm serve` with the official OpenAI client, as a user's program
// would: completion, chat, streaming (both), fill-in-the-middle, and an
// error. Usage: node openai_client.js http://127.0.0.1:PORT/v1
// Exits non-zero on the first failed check; tests/server/server_test.cc runs it.
'use strict';
const OpenAI = require('openai');
const assert = require('assert');

async function main() {
  const baseURL = process.argv[2];
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });

  const models = await client.models.list();
  const model = models.data[0].id;
  assert.strictEqual(model, 'shakespeare-mdm');

  // Completion, then the same as a stream: the same text.
  const req = { model, prompt: 'ROMEO:', max_tokens: 32, temperature: 0.7, seed: 11 };
  const c = await client.completions.create(req);
  const text = c.choices[0].text;
  assert.ok(text.length > 0, 'empty completion');
  assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
  assert.strictEqual(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  let streamed = '';
  let reason = null;
  for await (const chunk of await client.completions.create({ ...req, stream: true })) {
    streamed += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) reason = chunk.choices[0].finish_reason;
  }
  assert.strictEqual(streamed, text, 'streamed completion differs');
  assert.strictEqual(reason, c.choices[0].finish_reason);

  // `diffusing`: the client hands the named canvas events over as
  // {event, data}, beside the usual chunks, which still spell the same text.
  let diffused = '';
  const canvases = [];
  for await (const item of await client.completions.create({ ...req, stream: true, diffusing: true })) {
    if (item.event === 'canvas') canvases.push(item.data);
    else diffused += item.choices[0].text;
  }
  assert.strictEqual(diffused, text, 'diffusing stream differs');
  assert.ok(canvases.length >= 2, 'no canvases');
  assert.strictEqual(canvases[0].masked, 32);
  assert.strictEqual(canvases[canvases.length - 1].masked, 0);
  assert.strictEqual(canvases[canvases.length - 1].tokens.join(''), text);

  // Chat, then streamed.
  const chat = { model, messages: [{ role: 'user', content: 'Good morrow.' }],
                 max_tokens: 32, temperature: 0.7, seed: 12 };
  const a = await client.chat.completions.create(chat);
  assert.strictEqual(a.choices[0].message.role, 'assistant');
  const answer = a.choices[0].message.content;
  let sanswer = '';
  for await (const chunk of await client.chat.completions.create({ ...chat, stream: true })) {
    if (chunk.choices.length && chunk.choices[0].delta.content) sanswer += chunk.choices[0].delta.content;
  }
  assert.strictEqual(sanswer, answer, 'streamed chat differs');

  // Fill in the middle: prompt + suffix, diffusion settings as extra fields.
  const fim = await client.completions.create({
    model, prompt: 'ROMEO:\nWhat say', suffix: '\n\nJULIET:\nAy me!', max_tokens: 16,
    steps: 16, block_length: 16, seed: 13,
  });
  assert.ok(typeof fim.choices[0].text === 'string');

  // A bad request surfaces as the client's APIError with OpenAI's fields.
  try {
    await client.completions.create({ model, prompt: 'x', max_tokens: 0 });
    assert.fail('max_tokens 0 was accepted');
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.strictEqual(e.status, 400);
    assert.strictEqual(e.param, 'max_tokens');
  }
  try {
    await client.completions.create({ model: 'gpt-4', prompt: 'x' });
    assert.fail('unknown model was accepted');
  } catch (e) {
    assert.strictEqual(e.status, 404);
    assert.strictEqual(e.code, 'model_not_found');
  }
  console.log('openai client: all checks passed');
}

main().catch((e) => {
  console.error('openai client: FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
