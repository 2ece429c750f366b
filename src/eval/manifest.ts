// Evaluation manifests: JSON Lines, one object per audio file, as in shared/audio/*/manifest.jsonl.
// `path` is relative to the parent of the manifest's folder (shared/audio/real-en/manifest.jsonl
// lists `real-en/jfk.wav`), or absolute; `text` is the reference (`""`: nothing should be heard,
// `null`: no reference, skipped); `language` is a code or null. Other fields are ignored.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { resolveLanguage } from '../decoding/languages.ts';
import { EarshotError } from '../errors.ts';

export interface ManifestEntry {
  /** `path` as the manifest writes it: the file's name in reports and comparisons. */
  path: string;
  /** Where the audio is on this machine. */
  audioPath: string;
  /** The reference transcript; empty when the audio should give no text. */
  text: string;
  /** Language code, or null when the manifest does not say. */
  language: string | null;
  manifest: string;
  line: number;
}

export interface Manifest {
  entries: ManifestEntry[];
  /** Lines with `text: null`, left out. */
  skipped: number;
}

const lineSchema = z.object({
  path: z.string().min(1),
  text: z.string().nullable(),
  language: z.string().min(1).nullable().optional(),
});

/** Reads manifests in order; throws `invalid_argument/bad_manifest` naming the file and line. */
export async function readManifests(files: readonly string[]): Promise<Manifest> {
  const entries: ManifestEntry[] = [];
  let skipped = 0;
  for (const file of files) {
    let body: string;
    try {
      body = await readFile(file, 'utf8');
    } catch (e) {
      throw new EarshotError('invalid_argument', 'bad_manifest', `cannot read manifest ${file}: ${(e as Error).message}`, { cause: e });
    }
    const base = dirname(dirname(resolve(file)));
    for (const [i, raw] of body.split('\n').entries()) {
      if (raw.trim() === '') continue;
      const where = `${file}:${i + 1}`;
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        throw new EarshotError('invalid_argument', 'bad_manifest', `${where}: not a JSON object`);
      }
      const r = lineSchema.safeParse(json);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        const field = issue.path.join('.') || 'line';
        throw new EarshotError('invalid_argument', 'bad_manifest', `${where}: ${field}: ${issue.message} (expected "path" and "text", and optionally "language")`);
      }
      let language: string | null = null;
      if (r.data.language != null) {
        try {
          language = resolveLanguage(r.data.language);
        } catch (e) {
          throw new EarshotError('invalid_argument', 'bad_manifest', `${where}: language: ${(e as Error).message}`);
        }
      }
      if (r.data.text === null) {
        skipped++;
        continue;
      }
      entries.push({
        path: r.data.path,
        audioPath: isAbsolute(r.data.path) ? r.data.path : resolve(base, r.data.path),
        text: r.data.text,
        language,
        manifest: file,
        line: i + 1,
      });
    }
  }
  return { entries, skipped };
}
