// A realtime transcription session's settings, as both protocols (GA `session.update`, beta
// `transcription_session.update`) set them: the input audio format, the transcription model,
// language and prompt, turn detection, and noise reduction (accepted, ignored). The protocols parse
// their own shapes into a SettingsPatch; this file merges a patch and turns the settings into the
// stream session's options.
import type { StreamSessionOptions } from '../../streaming/stream-session.ts';

/** Input audio: 24 kHz pcm16 (OpenAI's), 16 kHz pcm16 (earshot's), 8 kHz G.711 mu-law / A-law. */
export type AudioFormat = 'pcm24' | 'pcm16k' | 'pcmu' | 'pcma';
export const FORMAT_RATES: Readonly<Record<AudioFormat, number>> = { pcm24: 24000, pcm16k: 16000, pcmu: 8000, pcma: 8000 };

export type Eagerness = 'low' | 'medium' | 'high' | 'auto';

export interface TurnDetection {
  /** semantic_vad runs as server VAD: its eagerness only sets the silence that ends a turn. */
  type: 'server_vad' | 'semantic_vad';
  threshold: number;
  prefixPaddingMs: number;
  silenceMs: number;
  eagerness: Eagerness;
}

export interface RealtimeSettings {
  format: AudioFormat;
  /** The name the client gave (or the served model's id); leased when a stream starts. */
  model: string;
  language: string | null;
  prompt: string;
  /** null: manual turns (input_audio_buffer.commit). */
  turnDetection: TurnDetection | null;
  /** Echoed back; earshot does not filter the audio. */
  noiseReduction: { type?: 'near_field' | 'far_field' } | null;
}

/** What one update event changes; absent fields are left as they are. */
export interface SettingsPatch {
  format?: AudioFormat;
  model?: string;
  language?: string | null;
  prompt?: string | null;
  turnDetection?: {
    type: 'server_vad' | 'semantic_vad';
    threshold?: number | undefined;
    prefixPaddingMs?: number | undefined;
    silenceMs?: number | undefined;
    eagerness?: Eagerness | undefined;
  } | null;
  noiseReduction?: RealtimeSettings['noiseReduction'];
}

const DEFAULT_THRESHOLD = 0.5;
const DEFAULT_PADDING_MS = 300;

export function defaultSettings(model: string, silenceMs: number): RealtimeSettings {
  return {
    format: 'pcm24',
    model,
    language: null,
    prompt: '',
    turnDetection: { type: 'server_vad', threshold: DEFAULT_THRESHOLD, prefixPaddingMs: DEFAULT_PADDING_MS, silenceMs, eagerness: 'auto' },
    noiseReduction: null,
  };
}

/**
 * The silence that ends a turn under semantic_vad: the server's silence for `medium`/`auto`,
 * twice that for `low` (waits longer), half for `high` (answers sooner), within 100..10000 ms.
 */
export function eagerSilenceMs(eagerness: Eagerness, baseMs: number): number {
  const ms = eagerness === 'low' ? baseMs * 2 : eagerness === 'high' ? baseMs / 2 : baseMs;
  return Math.min(10000, Math.max(100, Math.round(ms)));
}

/** `settings` with `patch` applied; `baseSilenceMs` is the server's --stream-silence. */
export function applyPatch(settings: RealtimeSettings, patch: SettingsPatch, baseSilenceMs: number): RealtimeSettings {
  const next: RealtimeSettings = { ...settings };
  if (patch.format !== undefined) next.format = patch.format;
  if (patch.model !== undefined && patch.model !== '') next.model = patch.model;
  if (patch.language !== undefined) next.language = patch.language || null;
  if (patch.prompt !== undefined) next.prompt = patch.prompt ?? '';
  if (patch.noiseReduction !== undefined) next.noiseReduction = patch.noiseReduction;
  const t = patch.turnDetection;
  if (t === null) next.turnDetection = null;
  else if (t !== undefined) {
    // Fields left out keep their current values (or the defaults, after manual turns).
    const was = settings.turnDetection ?? defaultSettings(settings.model, baseSilenceMs).turnDetection!;
    const eagerness = t.eagerness ?? (t.type === was.type ? was.eagerness : 'auto');
    next.turnDetection =
      t.type === 'semantic_vad'
        ? { type: t.type, threshold: DEFAULT_THRESHOLD, prefixPaddingMs: DEFAULT_PADDING_MS, silenceMs: eagerSilenceMs(eagerness, baseSilenceMs), eagerness }
        : {
            type: t.type,
            threshold: t.threshold ?? (was.type === 'server_vad' ? was.threshold : DEFAULT_THRESHOLD),
            prefixPaddingMs: t.prefixPaddingMs ?? (was.type === 'server_vad' ? was.prefixPaddingMs : DEFAULT_PADDING_MS),
            silenceMs: t.silenceMs ?? (was.type === 'server_vad' ? was.silenceMs : baseSilenceMs),
            eagerness: 'auto',
          };
  }
  return next;
}

/** The stream session's options for these settings. */
export function sessionOptions(s: RealtimeSettings): StreamSessionOptions {
  const t = s.turnDetection;
  return {
    ...(s.language ? { language: s.language } : {}),
    ...(s.prompt ? { prompt: s.prompt } : {}),
    vad: t !== null,
    ...(t ? { threshold: t.threshold, prefixPaddingMs: t.prefixPaddingMs, silenceMs: t.silenceMs } : {}),
  };
}
