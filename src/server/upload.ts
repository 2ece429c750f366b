// Reads an OpenAI-style multipart upload: exactly one file (in the `file` field) and text fields.
//
// `receiveUpload` (the audio routes and async jobs) holds the file in memory while the server's
// uploads together stay under one cap (`UploadMemory`, --max-upload-memory); an upload that would
// pass it goes to a private temporary file instead (a 0600 file in a fresh 0700 directory of the
// system temp dir), which the decoder reads in chunks (or a job copies into the data directory) and
// which is deleted as soon as the upload is released (or, if the process dies first, when the next
// earshot starts: private-temp.ts). So however many large uploads arrive at
// once, the raw bytes they hold in memory stay under the cap. Uploads stop at the configured size
// limit (@fastify/multipart truncates there).
import type { MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';
import { diskFull } from '../jobs/storage-faults.ts';
import { makePrivateDir } from '../private-temp.ts';
import { paramError } from './http-errors.ts';

export interface UploadLimits {
  maxFileBytes: number;
  /** Largest text field, bytes. */
  maxFieldBytes?: number;
  maxFields?: number;
}

export const DEFAULT_MAX_FIELD_BYTES = 64 * 1024;
export const DEFAULT_MAX_FIELDS = 32;

/** Raw upload bytes held in memory by one server, all requests together, against a cap. */
export class UploadMemory {
  private held = 0;

  constructor(
    readonly limit: number,
    private readonly onChange: (held: number) => void = () => {},
  ) {}

  get bytes(): number {
    return this.held;
  }

  /** Takes `n` bytes of the budget; false (nothing taken) when that would pass the cap. */
  tryTake(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    this.onChange(this.held);
    return true;
  }

  give(n: number): void {
    this.held -= n;
    this.onChange(this.held);
  }
}

/** An uploaded file held in memory or spooled to a private temporary file, until `release()`. */
export interface ReceivedFile {
  /** The bytes, or the path of the spool file (for decodeAudio). Empty once released. */
  readonly source: Uint8Array | string;
  readonly size: number;
  readonly spooled: boolean;
  filename: string;
  mimetype: string;
  /** Gives back its share of the memory cap, or deletes its spool file. Safe to call again. */
  release(): Promise<void>;
}

export interface ReceivedUpload {
  file: ReceivedFile;
  fields: Map<string, string[]>;
}

function tooLarge(max: number): EarshotError {
  return paramError('payload_too_large', 'file_too_large', 'file', `the uploaded file is larger than the server accepts (${max} bytes)`);
}

/** Walks the form's parts: the one file goes to `takeFile`, text fields are collected. */
async function readForm<F>(
  request: FastifyRequest,
  limits: UploadLimits,
  takeFile: (part: MultipartFile) => Promise<F>,
  dropFile: (file: F) => Promise<void>,
): Promise<{ file: F; fields: Map<string, string[]> }> {
  if (!request.isMultipart()) {
    throw new EarshotError('invalid_argument', 'not_multipart', 'the request must be multipart/form-data with the audio in a "file" field');
  }
  const maxFieldBytes = limits.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES;
  const fields = new Map<string, string[]>();
  let file: F | undefined;
  const parts = request.parts({
    limits: {
      fileSize: limits.maxFileBytes,
      files: 1,
      fields: limits.maxFields ?? DEFAULT_MAX_FIELDS,
      fieldSize: maxFieldBytes,
      fieldNameSize: 200,
    },
  });
  try {
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          part.file.resume();
          throw paramError('invalid_argument', 'unexpected_file', part.fieldname, `unexpected file in field "${part.fieldname}": send the audio in the "file" field`);
        }
        file = await takeFile(part);
      } else {
        if (part.valueTruncated) {
          throw paramError('payload_too_large', 'field_too_large', part.fieldname, `the field "${part.fieldname}" is longer than ${maxFieldBytes} bytes`);
        }
        const value = typeof part.value === 'string' ? part.value : String(part.value);
        const list = fields.get(part.fieldname);
        if (list) list.push(value);
        else fields.set(part.fieldname, [value]);
      }
    }
  } catch (e) {
    if (file !== undefined) await dropFile(file);
    throw e;
  }
  if (file === undefined) throw paramError('invalid_argument', 'missing_file', 'file', 'no audio file: send it in the "file" field of a multipart/form-data body');
  return { file, fields };
}

/** A private temporary file: 0600, alone in a fresh 0700 directory. */
class Spool {
  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(): Promise<Spool> {
    const dir = await makePrivateDir('upload'); // 0700; swept by the next start if this process dies
    const path = join(dir, 'upload');
    try {
      return new Spool(dir, path, await open(path, 'wx', 0o600));
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; ) at += (await this.fh.write(chunk, at)).bytesWritten;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  async remove(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

function spoolFailed(e: unknown): EarshotError {
  if (diskFull(e)) {
    return new EarshotError('insufficient_storage', 'upload_spool_full', 'the server has no room to hold this upload for decoding; retry later', { cause: e });
  }
  return new EarshotError('internal', 'upload_spool_failed', 'the server could not store the upload for decoding (is its temporary directory full?)', { cause: e });
}

/**
 * Receives the file part into memory while `memory` allows, else into a spool file. Memory taken
 * is given back when the file goes to disk, and the temporary of joining the chunks is taken too,
 * so the cap holds at every moment.
 */
async function receiveFile(part: MultipartFile, maxFileBytes: number, memory: UploadMemory, onSpool: () => void): Promise<ReceivedFile> {
  let chunks: Buffer[] = [];
  let size = 0;
  let taken = 0;
  let spool: Spool | undefined;
  const toDisk = async (): Promise<Spool> => {
    onSpool();
    const s = await Spool.create().catch((e: unknown) => {
      throw spoolFailed(e);
    });
    spool = s;
    for (const c of chunks) await s.write(c);
    chunks = [];
    memory.give(taken);
    taken = 0;
    return s;
  };
  try {
    // Read to the end even past the limit (busboy drops what is beyond it): leaving the loop early
    // would leave the rest of the body unread on a kept-alive connection, and the client's next
    // request on it would hang.
    for await (const chunk of part.file as AsyncIterable<Buffer>) {
      if (part.file.truncated) continue;
      size += chunk.length;
      if (!spool && memory.tryTake(chunk.length)) {
        taken += chunk.length;
        chunks.push(chunk);
        continue;
      }
      await (spool ?? (await toDisk())).write(chunk).catch((e: unknown) => {
        throw spoolFailed(e);
      });
    }
    if (part.file.truncated) throw tooLarge(maxFileBytes);
    let bytes: Uint8Array | undefined;
    if (!spool) {
      if (chunks.length === 1) bytes = chunks[0]!;
      else if (memory.tryTake(size)) {
        bytes = Buffer.concat(chunks, size);
        memory.give(taken);
        taken = size;
      } else await toDisk();
      chunks = [];
    }
    if (spool) await spool.close().catch((e: unknown) => {
      throw spoolFailed(e);
    });
    return held(part, size, bytes, spool, taken, memory);
  } catch (e) {
    memory.give(taken);
    await spool?.remove();
    throw e;
  }
}

function held(part: MultipartFile, size: number, bytes: Uint8Array | undefined, spool: Spool | undefined, taken: number, memory: UploadMemory): ReceivedFile {
  let source: Uint8Array | string = bytes ?? spool!.path;
  let released = false;
  return {
    get source() {
      return source;
    },
    size,
    spooled: spool !== undefined,
    filename: part.filename,
    mimetype: part.mimetype,
    async release() {
      if (released) return;
      released = true;
      source = new Uint8Array(0); // drop the reference, so the bytes can be collected now
      memory.give(taken);
      await spool?.remove();
    },
  };
}

/** The form with its file under the server's memory cap (see the header); release the file when done with it. */
export async function receiveUpload(
  request: FastifyRequest,
  limits: UploadLimits,
  memory: UploadMemory,
  onSpool: () => void = () => {},
): Promise<ReceivedUpload> {
  return readForm(
    request,
    limits,
    (part) => receiveFile(part, limits.maxFileBytes, memory, onSpool),
    (file) => file.release(),
  );
}
