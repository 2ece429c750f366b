// What the two realtime protocols on /v1/realtime have in common: the Dialect each implements (its
// update event parsed into a SettingsPatch, its session object, its event names), the zod fields
// both use, and how a refused field becomes OpenAI's error (`invalid_value` naming its `param`).
import { z } from 'zod';
import { EarshotError } from '../../errors.ts';
import type { RealtimeSettings, SettingsPatch } from './settings.ts';

export interface Dialect {
  readonly name: 'ga' | 'beta';
  /** The client's update event, and the server's answers. */
  readonly updateType: string;
  readonly createdType: string;
  readonly updatedType: string;
  /** The update event's settings; throws `invalid_value` with the field's param. */
  parseUpdate(msg: Record<string, unknown>): SettingsPatch;
  /** Where the update names the transcription model (for a model_not_found's param). */
  readonly modelParam: string;
  sessionObject(id: string, s: RealtimeSettings): object;
  /** GA announces each committed turn as a user item: `conversation.item.added`, then `.done`. */
  readonly itemEvents: boolean;
}

/** `{model, language, prompt}`, the transcription settings in both protocols (other fields ignored). */
export const transcriptionFields = z
  .object({
    model: z.string().max(256).optional(),
    language: z.string().max(64).nullable().optional(),
    prompt: z.string().max(4000).nullable().optional(),
  })
  .nullable()
  .optional();

/** server_vad's parameters, in both protocols. */
export const serverVadFields = {
  type: z.literal('server_vad'),
  threshold: z.number().gt(0).max(1).optional(),
  prefix_padding_ms: z.number().int().min(0).max(2000).optional(),
  silence_duration_ms: z.number().int().min(100).max(10000).optional(),
};

export const eventIdField = z.string().max(256).optional();

/** `msg` parsed by `schema`, or the first problem as an `invalid_value` error naming its field. */
export function parseEvent<S extends z.ZodType>(schema: S, msg: unknown): z.infer<S> {
  const parsed = schema.safeParse(msg);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.join('.');
  throw new EarshotError('invalid_argument', 'invalid_value', `invalid ${param || 'event'}: ${issue.message}`, param ? { param } : {});
}

/** The transcription part of a patch, from either protocol's `{model, language, prompt}`. */
export function transcriptionPatch(t: z.infer<typeof transcriptionFields>): SettingsPatch {
  if (!t) return {};
  return {
    ...(t.model !== undefined ? { model: t.model } : {}),
    ...(t.language !== undefined ? { language: t.language } : {}),
    ...(t.prompt !== undefined ? { prompt: t.prompt } : {}),
  };
}
