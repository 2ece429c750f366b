// Reads an OpenAI-style multipart upload: exactly one file (in the `file` field) and text fields.
// The file is streamed into memory up to the configured limit (@fastify/multipart stops and throws
// past it), so no upload ever touches the disk and there is nothing to clean up after a bad one.
import type { FastifyRequest } from 'fastify';
import { EarshotError } from '../errors.ts';
import { paramError } from './http-errors.ts';

export interface UploadLimits {
  maxFileBytes: number;
  /** Largest text field, bytes. */
  maxFieldBytes?: number;
  maxFields?: number;
}

export interface Upload {
  file: { bytes: Uint8Array; filename: string; mimetype: string };
  /** Text fields by name; a repeated name keeps every value, in order. */
  fields: Map<string, string[]>;
}

export const DEFAULT_MAX_FIELD_BYTES = 64 * 1024;
export const DEFAULT_MAX_FIELDS = 32;

export async function readUpload(request: FastifyRequest, limits: UploadLimits): Promise<Upload> {
  if (!request.isMultipart()) {
    throw new EarshotError('invalid_argument', 'not_multipart', 'the request must be multipart/form-data with the audio in a "file" field');
  }
  const maxFieldBytes = limits.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES;
  const fields = new Map<string, string[]>();
  let file: Upload['file'] | undefined;
  const parts = request.parts({
    limits: {
      fileSize: limits.maxFileBytes,
      files: 1,
      fields: limits.maxFields ?? DEFAULT_MAX_FIELDS,
      fieldSize: maxFieldBytes,
      fieldNameSize: 200,
    },
  });
  for await (const part of parts) {
    if (part.type === 'file') {
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw paramError('invalid_argument', 'unexpected_file', part.fieldname, `unexpected file in field "${part.fieldname}": send the audio in the "file" field`);
      }
      const bytes = await part.toBuffer();
      file = { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), filename: part.filename, mimetype: part.mimetype };
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
  if (!file) throw paramError('invalid_argument', 'missing_file', 'file', 'no audio file: send it in the "file" field of a multipart/form-data body');
  return { file, fields };
}
