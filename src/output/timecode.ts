// Timecodes for subtitle formats: SRT writes `00:00:01,000`, WebVTT `00:00:01.000`.

export function timecode(seconds: number, decimalMarker: ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const ms = totalMs % 1000;
  const totalS = (totalMs - ms) / 1000;
  const s = totalS % 60;
  const m = Math.floor(totalS / 60) % 60;
  const h = Math.floor(totalS / 3600);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${decimalMarker}${pad(ms, 3)}`;
}
