// The web page at `/` in a real browser: Debian's Chromium driven by playwright-core, with a fake
// microphone that plays the JFK clip (resampled to 48 kHz, so the page's own downsampler runs). A
// server with a test model (random weights: the checks are about what reaches the DOM and the
// wire, not about words) and an API key, so the page's key prompt is exercised too. Leaves a
// screenshot in test/browser/artifacts/page.png (and page-live.png, taken while partial text shows).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { resample } from '../../src/audio/resample.ts';
import { parseWav } from '../../src/audio/wav.ts';
import type { Segment } from '../../src/decoding/transcription.ts';
import { toSrt, toVtt } from '../../src/output/subtitles.js';
import type { RunningServer } from '../../src/server/app.ts';
import { isolateHome, modelDir, ROOT, startTestServer, wav16 } from '../server/helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'page-test-key';
const ARTIFACTS = join(ROOT, 'test/browser/artifacts');
const JFK = join(ROOT, '../shared/audio/real-en/jfk.wav');

/** A 48 kHz mono 16-bit WAV of the JFK clip, for Chromium's fake microphone. */
function jfk48k(path: string): void {
  const audio = parseWav(readFileSync(JFK));
  const x = resample(audio.samples, audio.sampleRate, 48000);
  const pcm = Buffer.alloc(x.length * 2);
  for (let i = 0; i < x.length; i++) pcm.writeInt16LE(Math.round(Math.max(-1, Math.min(1, x[i]!)) * 32767), i * 2);
  writeFileSync(path, wav16(pcm, 48000));
}

/** Clicks a download link as a user would; the file the browser saved, and its name. */
async function download(selector: string): Promise<{ name: string; text: string }> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  return { name: d.suggestedFilename(), text: readFileSync(await d.path(), 'utf8') };
}

/** Pearson correlation of `x` with the stretch of `ref` (looped) it matches best. */
function bestCorrelation(x: Float32Array, ref: Float32Array): number {
  const at = (i: number) => ref[i % ref.length]!;
  const corr = (offset: number, step: number) => {
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < x.length; i += step) {
      const y = at(offset + i);
      sxy += x[i]! * y;
      sxx += x[i]! * x[i]!;
      syy += y * y;
    }
    return sxy / Math.sqrt(sxx * syy || 1);
  };
  // Coarse search on every 8th sample and offset, then exact around the best one.
  let best = 0;
  let bestR = -Infinity;
  for (let o = 0; o < ref.length; o += 4) {
    const r = corr(o, 8);
    if (r > bestR) [best, bestR] = [o, r];
  }
  let r = -Infinity;
  for (let o = best - 8; o <= best + 8; o++) r = Math.max(r, corr(o + ref.length, 1));
  return r;
}

let server: RunningServer;
let browser: BrowserContext;
let page: Page;
let work: string;
/** Uncaught errors in the page; each test expects none. */
const pageErrors: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`);
  isolateHome();
  work = mkdtempSync(join(tmpdir(), 'earshot-browser-test-'));
  const wav = join(work, 'jfk-48k.wav');
  jfk48k(wav);
  server = await startTestServer({ model: modelDir('english'), apiKeys: [KEY] });
  browser = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  // tsx compiles this file keeping function names, through a `__name` helper that functions
  // passed to page.evaluate then call inside the page: give the page a do-nothing one.
  await browser.addInitScript({ content: 'globalThis.__name = (f) => f;' });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

afterEach(() => {
  assert.deepEqual(pageErrors.splice(0), [], 'errors in the page');
});

after(async () => {
  if (page && !page.isClosed()) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'page.png'), fullPage: true }).catch(() => {});
  }
  await browser?.close();
  await server?.app.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the page and its assets load without a key, with a strict CSP; the API still needs one', async () => {
  for (const path of ['/', '/web/app.js', '/web/app.css', '/web/capture-processor.js', '/web/downsampler.js', '/web/subtitles.js']) {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  }
  assert.match((await fetch(server.url + '/')).headers.get('content-type') ?? '', /^text\/html/);
  assert.match((await fetch(server.url + '/web/app.js')).headers.get('content-type') ?? '', /^text\/javascript/);
  // Only the listed files are served: nothing else of the folder is reachable, key or not.
  assert.equal((await fetch(server.url + '/web/routes.ts', { headers: { authorization: `Bearer ${KEY}` } })).status, 404);
  assert.equal((await fetch(server.url + '/v1/models')).status, 401);
});

test('a 401 from the API brings up the key field; an accepted key is kept in sessionStorage', async () => {
  await page.goto(server.url + '/');
  await page.locator('#key-section').waitFor({ state: 'visible' });
  await page.fill('#api-key', 'wrong-key');
  await page.click('#key-form button[type=submit]');
  await page.locator('#key-message', { hasText: 'refused' }).waitFor();
  await page.fill('#api-key', KEY);
  await page.click('#key-form button[type=submit]');
  await page.locator('#key-section').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('earshot.apiKey')), KEY);
  // A reload keeps the key: no prompt this time.
  await page.reload();
  await page.waitForLoadState('networkidle');
  assert.equal(await page.locator('#key-section').isVisible(), false);
});

test('the page renders subtitle edge cases with the server\'s own subtitle code (src/output/subtitles.js)', async () => {
  // Hand-made segments: an empty one (no cue), "-->" inside text, several lines, hours and rounding.
  const segments = [
    { start: 0, end: 1.2344, text: ' Hello there.' },
    { start: 1.5, end: 2, text: '   ' },
    { start: 2.0005, end: 3.9996, text: ' a --> b\n  second line \n' },
    { start: 3725.25, end: 3726.5, text: 'late' },
  ] as Segment[];
  // The page's renderers are module-private: drive them through a fake transcription response.
  await page.route('**/v1/audio/transcriptions', (route) =>
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ text: ' x ', duration: 3727, segments }) }),
  );
  await page.setInputFiles('#file', { name: 'edge.wav', mimeType: 'audio/wav', buffer: Buffer.from('RIFF') });
  await page.click('#upload');
  await page.locator('#file-status', { hasText: 'Done: 3727.0 s' }).waitFor();
  await page.unroute('**/v1/audio/transcriptions');
  const got = { srt: await download('#download-srt'), vtt: await download('#download-vtt') };
  assert.deepEqual(got.srt, { name: 'edge.srt', text: toSrt(segments) });
  assert.deepEqual(got.vtt, { name: 'edge.vtt', text: toVtt(segments) });
  assert.match(got.srt.text, /^3\n01:02:05,250 --> 01:02:06,500\nlate\n$/m);
});

test('uploading a file shows progress, then the transcript with TXT, SRT and VTT downloads as the server renders them', async () => {
  // Record the upload progress events the page's XHR listener receives.
  await page.evaluate(() => {
    const w = window as unknown as { progress: number[][] };
    w.progress = [];
    const add = XMLHttpRequestUpload.prototype.addEventListener;
    XMLHttpRequestUpload.prototype.addEventListener = function (this: XMLHttpRequestUpload, type: string, fn: unknown, opts?: unknown) {
      if (type === 'progress') {
        const inner = fn as (e: ProgressEvent) => void;
        fn = (e: ProgressEvent) => {
          w.progress.push([e.loaded, e.total]);
          inner(e);
        };
      }
      return add.call(this, type, fn as EventListener, opts as AddEventListenerOptions);
    } as typeof add;
  });
  const clip = join(ROOT, 'samples/jfk.wav');
  const responded = page.waitForResponse((r) => r.url().endsWith('/v1/audio/transcriptions'));
  await page.setInputFiles('#file', clip);
  await page.click('#upload');
  const response = await responded;
  assert.equal(response.status(), 200);
  assert.equal(response.request().headers()['authorization'], `Bearer ${KEY}`);
  // Segments and duration come only with response_format=verbose_json.
  const result = (await response.json()) as { text: string; duration: number; segments: Segment[] };
  assert.ok(Array.isArray(result.segments) && result.duration === 11, 'not a verbose_json answer');

  await page.locator('#file-result').waitFor({ state: 'visible' });
  assert.match((await page.textContent('#file-status')) ?? '', /^Done: 11\.0 s/);
  assert.equal(await page.locator('#upload-progress').isVisible(), false);
  const progress = await page.evaluate(() => (window as unknown as { progress: number[][] }).progress);
  assert.ok(progress.length > 0, 'no upload progress event reached the page');
  const [loaded, total] = progress.at(-1)!;
  assert.ok(total! > readFileSync(clip).length && loaded === total, `last progress ${loaded}/${total}`);

  assert.equal(await page.inputValue('#file-text'), result.text.trim());
  const downloads = { txt: await download('#download-txt'), srt: await download('#download-srt'), vtt: await download('#download-vtt') };
  assert.deepEqual(downloads.txt, { name: 'jfk.txt', text: `${result.text.trim()}\n` });
  assert.deepEqual(downloads.srt, { name: 'jfk.srt', text: toSrt(result.segments) });
  assert.deepEqual(downloads.vtt, { name: 'jfk.vtt', text: toVtt(result.segments) });
  assert.ok(result.segments.length > 0 && downloads.vtt.text.includes(' --> '), 'the clip gave no cue to compare');
});

test('the microphone streams 16 kHz s16le frames over /v1/stream; partial text shows greyed, final text solid', async () => {
  const sent: (string | number)[] = [];
  const audio: Buffer[] = [];
  const received: { type: string }[] = [];
  const urls: string[] = [];
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/v1/stream')) return;
    urls.push(ws.url());
    ws.on('framesent', (f) => {
      if (typeof f.payload === 'string') sent.push(f.payload);
      else {
        sent.push(f.payload.length);
        audio.push(f.payload);
      }
    });
    ws.on('framereceived', (f) => {
      if (typeof f.payload === 'string') received.push(JSON.parse(f.payload) as { type: string });
    });
  });
  // Note every text the partial spans ever show (they are cleared when a final arrives).
  await page.evaluate(() => {
    const w = window as unknown as { seen: { committed: string; tentative: string }[] };
    w.seen = [];
    const note = () => w.seen.push({ committed: document.getElementById('committed')!.textContent!, tentative: document.getElementById('tentative')!.textContent! });
    new MutationObserver(note).observe(document.getElementById('current')!, { childList: true, subtree: true, characterData: true });
  });
  await page.click('#record');
  await page.locator('#record[aria-pressed=true]').waitFor();
  await page.waitForFunction(() => (window as unknown as { seen: { committed: string; tentative: string }[] }).seen.some((s) => s.committed + s.tentative !== ''), null, { timeout: 30_000 });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'page-live.png'), fullPage: true });
  await page.click('#record'); // stop: last frame, end, the server's final and done
  await page.locator('#finals p.final').first().waitFor({ timeout: 30_000 });
  await page.locator('#record[aria-pressed=false]:not([disabled])').waitFor();

  // The key travels in a subprotocol (the server refuses upgrades without one), not in the URL.
  assert.deepEqual(urls.map((u) => new URL(u).search), ['']);
  const start = JSON.parse(String(sent[0])) as Record<string, unknown>;
  assert.deepEqual(start, { type: 'start', format: 's16le', sample_rate: 16000 });
  const frames = sent.filter((f) => typeof f === 'number') as number[];
  assert.ok(frames.length >= 3, `only ${frames.length} audio frames sent`);
  assert.ok(frames.slice(0, -1).every((n) => n === 6400), `frames of ${[...new Set(frames)].join(', ')} bytes`); // 200 ms of s16le
  assert.deepEqual(JSON.parse(String(sent.at(-1))), { type: 'end' });
  // What went out is the clip at 16 kHz: it lines up with jfk.wav sample for sample. A fake capture
  // device can drop a buffer when the machine is busy (the server decodes meanwhile), which breaks
  // the alignment from there on: the best quarter second sent (hopping by 1/16 s) must line up. (A
  // half second failed on a busy machine, 0.62 at best: drops came more often than that.)
  const pcm = Buffer.concat(audio);
  const got = Float32Array.from({ length: pcm.length / 2 }, (_, i) => pcm.readInt16LE(2 * i) / 32768);
  const ref = parseWav(readFileSync(JFK)).samples;
  assert.ok(got.length >= 3200 + 4000, `only ${got.length} samples sent`);
  let r = -Infinity;
  for (let at = 3200; at + 4000 <= got.length && r <= 0.9; at += 1000) r = Math.max(r, bestCorrelation(got.subarray(at, at + 4000), ref));
  assert.ok(r > 0.9, `the audio sent matches jfk.wav with correlation ${r.toFixed(3)} only`);
  const types = received.map((m) => m.type);
  assert.equal(types[0], 'ready');
  assert.ok(types.includes('partial') && types.includes('final'), types.join(','));
  assert.equal(types.at(-1), 'done');

  // Tentative text is greyed, final text is not.
  const colors = await page.evaluate(() => ({
    tentative: getComputedStyle(document.getElementById('tentative')!).color,
    final: getComputedStyle(document.querySelector('#finals p.final')!).color,
  }));
  assert.notEqual(colors.tentative, colors.final);
  assert.match((await page.textContent('#live-status')) ?? '', /Stopped/);
});
