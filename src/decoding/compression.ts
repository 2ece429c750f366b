// openai/whisper's compression_ratio (utils.py): UTF-8 length over zlib-compressed length, at
// zlib's default level. A high ratio (> 2.4 by default) flags a looping, repetitive decode that
// the long-form loop retries at a higher temperature.
//
// Node's bundled zlib (Chromium's fork) may choose slightly different matches than the system
// zlib Python links, so the compressed length can differ by a few bytes for the same text (e.g.
// 37 vs 34 bytes for a 480-byte repetition). Python installs differ among themselves the same way
// (zlib vs zlib-ng); the 2.4 threshold is far coarser than that, so no extra dependency for it.
import { deflateSync } from 'node:zlib';

export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length / deflateSync(bytes).length;
}
