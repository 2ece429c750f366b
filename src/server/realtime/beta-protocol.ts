// The beta Realtime transcription protocol (`OpenAI-Beta: realtime=v1`), which earshot spoke first
// and keeps: `transcription_session.update` with `input_audio_format` (pcm16 at 24 kHz, earshot's
// pcm16_16khz, g711_ulaw, g711_alaw), `input_audio_transcription` and `turn_detection`
// (server_vad or null), answered by `transcription_session.created` / `.updated`.
import { z } from 'zod';
import type { Dialect } from './protocol.ts';
import { eventIdField, parseEvent, serverVadFields, transcriptionFields, transcriptionPatch } from './protocol.ts';
import type { AudioFormat, RealtimeSettings, SettingsPatch } from './settings.ts';

const FORMAT_NAMES = { pcm16: 'pcm24', pcm16_16khz: 'pcm16k', g711_ulaw: 'pcmu', g711_alaw: 'pcma' } as const satisfies Record<string, AudioFormat>;
const NAME_OF: Record<AudioFormat, keyof typeof FORMAT_NAMES> = { pcm24: 'pcm16', pcm16k: 'pcm16_16khz', pcmu: 'g711_ulaw', pcma: 'g711_alaw' };

const updateSchema = z.object({
  type: z.literal('transcription_session.update'),
  event_id: eventIdField,
  session: z.object({
    input_audio_format: z.enum(['pcm16', 'pcm16_16khz', 'g711_ulaw', 'g711_alaw']).optional(),
    input_audio_transcription: transcriptionFields,
    turn_detection: z.object(serverVadFields).nullable().optional(),
  }),
});

function parseUpdate(msg: Record<string, unknown>): SettingsPatch {
  const s = parseEvent(updateSchema, msg).session;
  const t = s.turn_detection;
  return {
    ...(s.input_audio_format !== undefined ? { format: FORMAT_NAMES[s.input_audio_format] } : {}),
    ...transcriptionPatch(s.input_audio_transcription),
    ...(t === null ? { turnDetection: null } : {}),
    ...(t ? { turnDetection: { type: t.type, threshold: t.threshold, prefixPaddingMs: t.prefix_padding_ms, silenceMs: t.silence_duration_ms } } : {}),
  };
}

function sessionObject(id: string, s: RealtimeSettings): object {
  const t = s.turnDetection;
  return {
    id,
    object: 'realtime.transcription_session',
    input_audio_format: NAME_OF[s.format],
    input_audio_transcription: { model: s.model, language: s.language, prompt: s.prompt },
    turn_detection: t && { type: 'server_vad', threshold: t.threshold, prefix_padding_ms: t.prefixPaddingMs, silence_duration_ms: t.silenceMs },
    input_audio_noise_reduction: s.noiseReduction,
    include: null,
    modalities: ['text'],
  };
}

export const betaDialect: Dialect = {
  name: 'beta',
  updateType: 'transcription_session.update',
  createdType: 'transcription_session.created',
  updatedType: 'transcription_session.updated',
  modelParam: 'session.input_audio_transcription.model',
  parseUpdate,
  sessionObject,
  itemEvents: false,
};
