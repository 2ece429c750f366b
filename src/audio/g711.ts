// G.711 mu-law and A-law expansion tables (ITU-T G.711), for the in-process WAV reader.
// Hand-written: 256-entry tables are smaller than any dependency, and the results are checked
// against ffmpeg's pcm_mulaw / pcm_alaw decoders in the tests.

function muLawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

function aLawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

function table(expand: (b: number) => number): Float32Array {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = expand(b) / 32768;
  return t;
}

/** Byte value -> sample in [-1, 1], on the same 16-bit scale as linear PCM. */
export const MU_LAW = table(muLawToLinear);
export const A_LAW = table(aLawToLinear);
