// Today's (GA) Realtime transcription protocol: `session.update` with
// `session: {type: "transcription", audio: {input: {format, transcription, turn_detection,
// noise_reduction}}}`, answered by `session.created` / `session.updated` in the same shape, and a
// user item per committed turn (`conversation.item.added` / `.done`). Formats: audio/pcm at 24 kHz
// (OpenAI's) or 16 kHz (earshot's), audio/pcmu, audio/pcma. semantic_vad is accepted and runs as
// server VAD (settings.ts); noise_reduction, include and the response fields of turn detection
// are accepted and ignored.
import { z } from 'zod';
import type { Dialect } from './protocol.ts';
import { eventIdField, parseEvent, serverVadFields, transcriptionFields, transcriptionPatch } from './protocol.ts';
import type { AudioFormat, RealtimeSettings, SettingsPatch } from './settings.ts';

const formatSchema = z
  .object({
    type: z.enum(['audio/pcm', 'audio/pcmu', 'audio/pcma']).optional(),
    rate: z.number().optional(),
  })
  .transform((f, ctx): AudioFormat => {
    const type = f.type ?? 'audio/pcm';
    if (type === 'audio/pcm') {
      if (f.rate === undefined || f.rate === 24000) return 'pcm24';
      if (f.rate === 16000) return 'pcm16k';
      ctx.addIssue({ code: 'custom', path: ['rate'], message: 'audio/pcm takes rate 24000 (OpenAI) or 16000 (earshot)' });
      return z.NEVER;
    }
    if (f.rate !== undefined && f.rate !== 8000) {
      ctx.addIssue({ code: 'custom', path: ['rate'], message: `${type} is 8000 Hz` });
      return z.NEVER;
    }
    return type === 'audio/pcmu' ? 'pcmu' : 'pcma';
  });

const turnDetectionSchema = z
  .discriminatedUnion('type', [
    z.object(serverVadFields),
    z.object({ type: z.literal('semantic_vad'), eagerness: z.enum(['low', 'medium', 'high', 'auto']).optional() }),
  ])
  .nullable()
  .optional();

const updateSchema = z.object({
  type: z.literal('session.update'),
  event_id: eventIdField,
  session: z.object({
    type: z.literal('transcription', { error: 'earshot serves transcription sessions only: "transcription"' }),
    audio: z
      .object({
        input: z
          .object({
            format: formatSchema.optional(),
            transcription: transcriptionFields,
            turn_detection: turnDetectionSchema,
            noise_reduction: z.object({ type: z.enum(['near_field', 'far_field']).optional() }).nullable().optional(),
          })
          .optional(),
      })
      .optional(),
    include: z.array(z.string().max(100)).max(10).optional(),
  }),
});

function parseUpdate(msg: Record<string, unknown>): SettingsPatch {
  const input = parseEvent(updateSchema, msg).session.audio?.input;
  if (!input) return {};
  const t = input.turn_detection;
  return {
    ...(input.format !== undefined ? { format: input.format } : {}),
    ...transcriptionPatch(input.transcription),
    ...(input.noise_reduction !== undefined ? { noiseReduction: input.noise_reduction } : {}),
    ...(t === null ? { turnDetection: null } : {}),
    ...(t?.type === 'server_vad'
      ? { turnDetection: { type: t.type, threshold: t.threshold, prefixPaddingMs: t.prefix_padding_ms, silenceMs: t.silence_duration_ms } }
      : {}),
    ...(t?.type === 'semantic_vad' ? { turnDetection: { type: t.type, eagerness: t.eagerness } } : {}),
  };
}

const FORMAT_OBJECTS: Record<AudioFormat, object> = {
  pcm24: { type: 'audio/pcm', rate: 24000 },
  pcm16k: { type: 'audio/pcm', rate: 16000 },
  pcmu: { type: 'audio/pcmu' },
  pcma: { type: 'audio/pcma' },
};

function sessionObject(id: string, s: RealtimeSettings): object {
  const t = s.turnDetection;
  return {
    type: 'transcription',
    id,
    object: 'realtime.transcription_session',
    audio: {
      input: {
        format: FORMAT_OBJECTS[s.format],
        // No language: detected per turn (the SDK's type has no null here).
        transcription: { model: s.model, ...(s.language ? { language: s.language } : {}), prompt: s.prompt },
        turn_detection:
          t &&
          (t.type === 'semantic_vad'
            ? { type: 'semantic_vad', eagerness: t.eagerness }
            : { type: 'server_vad', threshold: t.threshold, prefix_padding_ms: t.prefixPaddingMs, silence_duration_ms: t.silenceMs }),
        noise_reduction: s.noiseReduction,
      },
    },
  };
}

export const gaDialect: Dialect = {
  name: 'ga',
  updateType: 'session.update',
  createdType: 'session.created',
  updatedType: 'session.updated',
  modelParam: 'session.audio.input.transcription.model',
  parseUpdate,
  sessionObject,
  itemEvents: true,
};

/** The user item of a committed turn, as `conversation.item.added` / `.done` carry it (its transcript comes in `…completed`). */
export function userAudioItem(id: string): object {
  return { id, object: 'realtime.item', type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_audio', transcript: null }] };
}
