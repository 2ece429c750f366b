// SRT and WebVTT from timed segments: the one implementation, used by the server and the CLI
// (through formats.ts) and by the web page, which loads this file as /web/subtitles.js to offer
// SRT and VTT downloads from one verbose_json answer (three formats, one transcription). Plain
// JavaScript because the page has no build step; subtitles.d.ts gives TypeScript its types.

/** `00:00:01,000` (SRT, marker ',') or `00:00:01.000` (WebVTT, marker '.'). */
export function timecode(seconds, decimalMarker) {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const ms = totalMs % 1000;
  const totalS = (totalMs - ms) / 1000;
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(Math.floor(totalS / 3600))}:${pad(Math.floor(totalS / 60) % 60)}:${pad(totalS % 60)}${decimalMarker}${pad(ms, 3)}`;
}

/** Cue text: one line per source line, with nothing that a subtitle parser would take as syntax. */
export function cueText(text) {
  return text
    .trim()
    .replace(/-->/g, '->')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join('\n');
}

function cues(segments) {
  return segments.filter((s) => cueText(s.text).length > 0);
}

export function toSrt(segments) {
  return cues(segments)
    .map((s, i) => `${i + 1}\n${timecode(s.start, ',')} --> ${timecode(s.end, ',')}\n${cueText(s.text)}\n`)
    .join('\n');
}

export function toVtt(segments) {
  const body = cues(segments)
    .map((s) => `${timecode(s.start, '.')} --> ${timecode(s.end, '.')}\n${cueText(s.text)}\n`)
    .join('\n');
  return `WEBVTT\n\n${body}`;
}
