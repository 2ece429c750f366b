// Shared fixtures for the decoding tests: our tokenizer and transformers.js's, both loaded offline
// from test/fixtures, plus the raw config files as reference data.
import { readFileSync } from 'node:fs';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { loadWhisperTokenizer, type WhisperTokenizer } from '../../src/decoding/tokenizer.ts';

export const MODELS = ['whisper-tiny', 'whisper-tiny.en'] as const;
export type ModelName = (typeof MODELS)[number];

const fixtures = new URL('../fixtures/', import.meta.url).pathname;
export const fixtureDir = (m: ModelName): string => `${fixtures}${m}`;

export function readFixtureJson(m: ModelName, file: string): Record<string, any> {
  return JSON.parse(readFileSync(`${fixtureDir(m)}/${file}`, 'utf8'));
}

const ours = new Map<ModelName, Promise<WhisperTokenizer>>();
export function ourTokenizer(m: ModelName): Promise<WhisperTokenizer> {
  if (!ours.has(m)) ours.set(m, loadWhisperTokenizer(fixtureDir(m)));
  return ours.get(m)!;
}

const refs = new Map<ModelName, Promise<PreTrainedTokenizer>>();
/** transformers.js is imported only by the tests that compare against it (it takes a second to load). */
export function referenceTokenizer(m: ModelName): Promise<PreTrainedTokenizer> {
  if (!refs.has(m)) {
    refs.set(
      m,
      import('@huggingface/transformers').then(({ AutoTokenizer, env }) => {
        env.allowRemoteModels = false;
        env.allowLocalModels = true;
        env.localModelPath = fixtures;
        return AutoTokenizer.from_pretrained(m);
      }),
    );
  }
  return refs.get(m)!;
}
