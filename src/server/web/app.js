// earshot's web page logic: the API key prompt (shown after a 401, kept in sessionStorage), live
// microphone transcription (capture-processor.js makes 16 kHz s16le frames; they go over the
// /v1/stream WebSocket and partial / final results come back), and file transcription through
// /v1/audio/transcriptions with upload progress and TXT/SRT/VTT downloads.
//
// The file is transcribed once, as verbose_json, and the subtitle files are made here from its
// segments, so that three downloads do not cost three transcriptions, with the server's own
// subtitle code (src/output/subtitles.js, served as /web/subtitles.js).

import { toSrt, toVtt } from './subtitles.js';

const KEY_STORE = 'earshot.apiKey';
const FRAME_SAMPLES = 3200; // 200 ms at 16 kHz
const $ = (id) => document.getElementById(id);

// ---------- API key ----------

let apiKey = sessionStorage.getItem(KEY_STORE) ?? '';
let onKeyAccepted = null;

function authHeaders() {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** Shows the key field; `message` says why (none yet, or the one given was refused). */
function askForKey(message) {
  $('key-message').textContent = message;
  $('key-section').hidden = false;
  $('api-key').focus();
}

/** True when the API answers without a 401 with the current key (or none). */
async function checkAccess() {
  let res;
  try {
    res = await fetch('/v1/models', { headers: authHeaders() });
  } catch {
    return true; // the server is unreachable: the action itself will report it
  }
  if (res.status !== 401) return true;
  askForKey(apiKey ? 'The API key was refused. Enter another one.' : 'This server needs an API key.');
  return false;
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  apiKey = $('api-key').value.trim();
  sessionStorage.setItem(KEY_STORE, apiKey);
  if (await checkAccess()) {
    $('key-section').hidden = true;
    $('api-key').value = '';
    const then = onKeyAccepted;
    onKeyAccepted = null;
    then?.();
  }
});

// ---------- live microphone ----------

let live = null; // { stream, context, node, socket, pending: ArrayBuffer[], ready, stopping, endPending }

function setLiveStatus(text, isError = false) {
  $('live-status').textContent = text;
  $('live-status').classList.toggle('error', isError);
}

function setRecordButton(recording) {
  const b = $('record');
  b.textContent = recording ? 'Stop recording' : 'Start recording';
  b.setAttribute('aria-pressed', String(recording));
}

/**
 * Opens /v1/stream. A browser cannot set headers on a WebSocket, so the key goes in a subprotocol
 * (kept out of URLs and so out of access logs); a key that is not a valid protocol token goes in
 * `?api_key=` instead. A refused key fails the upgrade itself (close 1006, no message).
 */
function openStream() {
  const url = new URL('/v1/stream', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (!apiKey) return new WebSocket(url.href);
  try {
    return new WebSocket(url.href, ['earshot', `openai-insecure-api-key.${apiKey}`]);
  } catch {
    url.searchParams.set('api_key', apiKey);
    return new WebSocket(url.href);
  }
}

function showPartial(committed, tentative) {
  $('committed').textContent = committed;
  $('tentative').textContent = tentative;
}

function showFinal(text) {
  showPartial('', '');
  if (!text.trim()) return;
  const p = document.createElement('p');
  p.className = 'final';
  p.textContent = text.trim();
  $('finals').append(p);
}

function onServerMessage(session, event) {
  if (typeof event.data !== 'string') return;
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return;
  }
  switch (msg.type) {
    case 'ready':
      session.ready = true;
      setLiveStatus('Listening…');
      for (const frame of session.pending.splice(0)) session.socket.send(frame);
      if (session.endPending) session.socket.send(JSON.stringify({ type: 'end' }));
      break;
    case 'partial':
      showPartial(msg.committed ?? '', msg.tentative ?? (msg.committed ? '' : (msg.text ?? '')));
      break;
    case 'final':
      showFinal(msg.text ?? '');
      break;
    case 'error':
      setLiveStatus(msg.message ?? msg.code ?? 'stream error', true);
      break;
    case 'done':
      session.socket.close(1000);
      break;
  }
}

async function startRecording() {
  if (!(await checkAccess())) {
    onKeyAccepted = startRecording;
    return;
  }
  $('record').disabled = true;
  setLiveStatus('Starting…');
  let stream;
  try {
    // Whisper was trained on unprocessed audio: the browser's noise suppression and echo
    // cancellation only add artefacts; its gain control helps quiet microphones.
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, noiseSuppression: false, echoCancellation: false, autoGainControl: true },
    });
  } catch (e) {
    setLiveStatus(`No microphone: ${e.message}`, true);
    $('record').disabled = false;
    return;
  }
  // The context runs at the device's rate (often 48 kHz); the worklet converts to 16 kHz.
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule('/web/capture-processor.js');
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    await context.close();
    setLiveStatus(`Audio processing unavailable: ${e.message}`, true);
    $('record').disabled = false;
    return;
  }
  const node = new AudioWorkletNode(context, 'earshot-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: 'explicit', // stereo microphones are mixed down to mono
    channelInterpretation: 'speakers',
    processorOptions: { targetRate: 16000, frameSamples: FRAME_SAMPLES },
  });
  context.createMediaStreamSource(stream).connect(node);
  node.connect(context.destination); // the processor writes silence; the connection keeps it running

  const socket = openStream();
  socket.binaryType = 'arraybuffer';
  live = { stream, context, node, socket, pending: [], ready: false, stopping: false, endPending: false };
  const session = live;
  node.port.onmessage = (event) => {
    const m = event.data;
    if (m.type === 'frame') {
      $('level').value = Math.min(1, m.level * 4);
      if (session.ready && socket.readyState === WebSocket.OPEN) socket.send(m.pcm);
      else session.pending.push(m.pcm);
    } else if (m.type === 'flushed' && socket.readyState === WebSocket.OPEN) {
      // Before "ready" the audio is still queued here: "end" must follow it, not overtake it.
      if (session.ready) socket.send(JSON.stringify({ type: 'end' }));
      else session.endPending = true;
    }
  };
  socket.addEventListener('open', () => {
    const start = { type: 'start', format: 's16le', sample_rate: 16000 };
    const language = $('live-language').value.trim();
    if (language) start.language = language;
    socket.send(JSON.stringify(start));
  });
  socket.addEventListener('message', (event) => onServerMessage(session, event));
  socket.addEventListener('close', (event) => {
    const wasStopping = session.stopping;
    release(session);
    if (live === session) live = null;
    setRecordButton(false);
    $('record').disabled = false;
    if (!wasStopping || event.code !== 1000) {
      if (!$('live-status').classList.contains('error')) {
        setLiveStatus(event.code === 1000 ? 'Stream ended.' : `Connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''}).`, event.code !== 1000);
      }
      if (event.code !== 1000) void checkAccess();
    } else {
      setLiveStatus('Stopped.');
    }
  });
  setRecordButton(true);
  $('record').disabled = false;
}

function release(session) {
  $('level').value = 0;
  session.stream.getTracks().forEach((t) => t.stop());
  session.node.port.onmessage = null;
  session.node.disconnect();
  if (session.context.state !== 'closed') void session.context.close();
}

/** Stops the microphone; the last frame and `end` go out, the server answers `done` and closes. */
function stopRecording() {
  if (!live || live.stopping) return;
  live.stopping = true;
  setLiveStatus('Finishing…');
  $('record').disabled = true;
  live.stream.getTracks().forEach((t) => t.stop());
  if (live.socket.readyState === WebSocket.OPEN) live.node.port.postMessage('flush');
  else live.socket.close();
}

$('record').addEventListener('click', () => (live ? stopRecording() : startRecording()));

// ---------- file transcription ----------

const downloadUrls = [];

function offerDownload(id, name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  downloadUrls.push(url);
  $(id).href = url;
  $(id).download = name;
}

function showResult(fileName, result) {
  for (const url of downloadUrls.splice(0)) URL.revokeObjectURL(url);
  const stem = fileName.replace(/\.[^.]*$/, '') || 'transcript';
  const text = (result.text ?? '').trim();
  $('file-text').value = text;
  offerDownload('download-txt', `${stem}.txt`, 'text/plain', `${text}\n`);
  offerDownload('download-srt', `${stem}.srt`, 'application/x-subrip', toSrt(result.segments ?? []));
  offerDownload('download-vtt', `${stem}.vtt`, 'text/vtt', toVtt(result.segments ?? []));
  $('file-result').hidden = false;
}

function setFileStatus(text, isError = false) {
  $('file-status').textContent = text;
  $('file-status').classList.toggle('error', isError);
}

function uploadFile() {
  const file = $('file').files[0];
  if (!file) return;
  const form = new FormData();
  form.append('file', file, file.name);
  form.append('response_format', 'verbose_json');
  const language = $('file-language').value.trim();
  if (language) form.append('language', language);

  const progress = $('upload-progress');
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/v1/audio/transcriptions');
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (e) => {
    if (!e.lengthComputable) return;
    progress.value = e.loaded / e.total;
    setFileStatus(`Uploading… ${Math.round((100 * e.loaded) / e.total)}%`);
  });
  xhr.upload.addEventListener('load', () => {
    progress.removeAttribute('value'); // indeterminate while the server transcribes
    setFileStatus('Transcribing…');
  });
  xhr.addEventListener('load', () => {
    progress.hidden = true;
    $('upload').disabled = false;
    if (xhr.status === 200 && xhr.response) {
      setFileStatus(`Done: ${Number(xhr.response.duration ?? 0).toFixed(1)} s of audio.`);
      showResult(file.name, xhr.response);
      return;
    }
    const message = xhr.response?.error?.message ?? `the server answered ${xhr.status}`;
    setFileStatus(`Failed: ${message}`, true);
    if (xhr.status === 401) {
      askForKey(apiKey ? 'The API key was refused. Enter another one.' : 'This server needs an API key.');
      onKeyAccepted = uploadFile;
    }
  });
  xhr.addEventListener('error', () => {
    progress.hidden = true;
    $('upload').disabled = false;
    setFileStatus('Failed: the server could not be reached.', true);
  });
  progress.value = 0;
  progress.hidden = false;
  $('upload').disabled = true;
  $('file-result').hidden = true;
  setFileStatus('Uploading…');
  xhr.send(form);
}

$('file-form').addEventListener('submit', (event) => {
  event.preventDefault();
  uploadFile();
});

void checkAccess();
