// Looks at the first bytes of an input to pick a decoder before any work is done: WAV goes to the
// in-process reader, well-known non-audio files are refused at once with a clear 'not_audio'
// error (ffmpeg would otherwise happily "decode" an image as a video stream), and MP4-family
// files are flagged because ffmpeg can only read them from a seekable file, not from a pipe.

export type Sniffed =
  | { kind: 'wav' }
  | { kind: 'not_audio'; what: string }
  /** Anything else: ffmpeg decides. `needsSeek` for containers whose index may sit at the end. */
  | { kind: 'other'; needsSeek: boolean };

/** How many leading bytes `sniff` looks at. */
export const SNIFF_BYTES = 16;

const ascii = (b: Uint8Array, at: number, len: number): string =>
  String.fromCharCode(...b.subarray(at, at + len));

const startsWith = (b: Uint8Array, sig: readonly number[]): boolean =>
  b.length >= sig.length && sig.every((v, i) => b[i] === v);

const NOT_AUDIO: readonly { sig: readonly number[]; what: string; also?: (b: Uint8Array) => boolean }[] = [
  { sig: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], what: 'a PNG image' },
  { sig: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { sig: [0x47, 0x49, 0x46, 0x38], what: 'a GIF image' },
  { sig: [0x25, 0x50, 0x44, 0x46, 0x2d], what: 'a PDF document' },
  { sig: [0x50, 0x4b, 0x03, 0x04], what: 'a ZIP archive' },
  { sig: [0x1f, 0x8b], what: 'a gzip archive' },
  { sig: [0x7f, 0x45, 0x4c, 0x46], what: 'an ELF executable' },
  { sig: [0x49, 0x49, 0x2a, 0x00], what: 'a TIFF image' },
  { sig: [0x4d, 0x4d, 0x00, 0x2a], what: 'a TIFF image' },
  // 'BM' is only two bytes: also require the BMP header's reserved zero words, so that an audio
  // stream that happens to start with 'BM' is not refused.
  { sig: [0x42, 0x4d], what: 'a BMP image', also: (b) => b.length >= 10 && b[6] === 0 && b[7] === 0 && b[8] === 0 && b[9] === 0 },
];

export function sniff(head: Uint8Array): Sniffed {
  if (head.length >= 12) {
    const riff = ascii(head, 0, 4);
    const form = ascii(head, 8, 4);
    if ((riff === 'RIFF' || riff === 'RF64' || riff === 'BW64') && form === 'WAVE') return { kind: 'wav' };
    if (riff === 'RIFF' && form === 'WEBP') return { kind: 'not_audio', what: 'a WebP image' };
    // ISO base media (MP4/M4A/MOV/3GP): a box type at offset 4.
    const box = ascii(head, 4, 4);
    if (['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip'].includes(box)) {
      return { kind: 'other', needsSeek: true };
    }
  }
  for (const n of NOT_AUDIO) {
    if (startsWith(head, n.sig) && (n.also?.(head) ?? true)) return { kind: 'not_audio', what: n.what };
  }
  return { kind: 'other', needsSeek: false };
}
