// The audio of `input_audio_buffer.append` events: base64 bytes in the session's format (pcm16 at
// 24 or 16 kHz, G.711 mu-law or A-law at 8 kHz) as the 16 kHz float samples the stream session
// takes. One InputAudio per stream session: its resampler carries state across appends.
import { A_LAW, MU_LAW } from '../../audio/g711.ts';
import { StreamResampler } from '../../audio/resample.ts';
import { EarshotError } from '../../errors.ts';
import { FORMAT_RATES, type AudioFormat } from './settings.ts';

const SESSION_RATE = 16000;

/** Samples in [-1, 1] of one append's bytes, at the format's own rate. */
export function decodeSamples(bytes: Buffer, format: AudioFormat): Float32Array {
  if (format === 'pcmu' || format === 'pcma') {
    const table = format === 'pcmu' ? MU_LAW : A_LAW;
    const out = new Float32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]!]!;
    return out;
  }
  if (bytes.length % 2 !== 0) throw new EarshotError('invalid_audio', 'bad_audio_frame', 'pcm16 audio must be a whole number of 2-byte samples');
  const pcm = new Int16Array(new Uint8Array(bytes).buffer); // a copy: aligned
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
  return out;
}

export class InputAudio {
  private readonly resampler: StreamResampler | undefined;

  constructor(readonly format: AudioFormat) {
    const rate = FORMAT_RATES[format];
    this.resampler = rate === SESSION_RATE ? undefined : new StreamResampler(rate, SESSION_RATE);
  }

  /** 16 kHz samples of base64 `audio` (some may come out with a later push, or at `end`). */
  push(audio: string): Float32Array {
    const samples = decodeSamples(Buffer.from(audio, 'base64'), this.format);
    return this.resampler ? this.resampler.push(samples) : samples;
  }

  /** The samples the resampler still holds. */
  end(): Float32Array {
    return this.resampler ? this.resampler.end() : new Float32Array(0);
  }
}
