// The work behind `earshot transcribe`, loaded only when the command runs (it pulls in
// onnxruntime and the decoder, which `earshot --help` or `earshot models` should not pay for):
// load the model once with a download bar, then per file decode, transcribe with a bar of audio
// seconds, render and write. A file's failure is one line on stderr and does not stop the others.
import cliProgress from 'cli-progress';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { decodeAudio } from '../audio/index.ts';
import { transcribeWithVadAll, type VadTranscribeOptions } from '../decoding/vad-filter.ts';
import { type Whisper } from '../runtime/loaded-model.ts';
import { loadWhisper } from '../runtime/model-cache.ts';
import { describeDevice } from '../engine/execution.ts';
import { EarshotError } from '../errors.ts';
import { formatDtypeSpec } from '../models/index.ts';
import { convertTranscription } from '../output/chinese.ts';
import { render } from '../output/formats.ts';
import { progressReporter } from './models.ts';
import { FORMAT_OUTPUT, type TranscribeCliOptions } from './transcribe-options.ts';

/** Where each input's transcript goes: undefined means stdout. */
export function outputPaths(files: readonly string[], opts: Pick<TranscribeCliOptions, 'format' | 'outputDir'>): Array<string | undefined> {
  if (files.length === 1 && opts.outputDir === undefined) return [undefined];
  const dir = opts.outputDir ?? '.';
  const ext = FORMAT_OUTPUT[opts.format].ext;
  const paths = files.map((f) => join(dir, `${basename(f, extname(f))}.${ext}`));
  const seen = new Map<string, string>();
  files.forEach((f, i) => {
    const key = resolve(paths[i]!);
    const other = seen.get(key);
    if (other !== undefined) {
      throw new EarshotError('invalid_argument', 'output_clash', `${other} and ${f} would both be written to ${paths[i]}; transcribe them separately or rename one`);
    }
    seen.set(key, f);
  });
  return paths;
}

/** The decoder's options from the CLI's (also used by `earshot eval`, which has no --task or --prompt). */
export function decodingOptions(
  o: Pick<TranscribeCliOptions, 'conditionOnPreviousText' | 'temperature' | 'beamSize' | 'bestOf' | 'sampleLen' | 'vadFilter'> &
    Partial<Pick<TranscribeCliOptions, 'language' | 'task' | 'prompt' | 'wordTimestamps'>>,
): VadTranscribeOptions {
  return {
    vadFilter: o.vadFilter,
    language: o.language,
    task: o.task,
    conditionOnPreviousText: o.conditionOnPreviousText,
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(o.beamSize !== undefined ? { beamSize: o.beamSize } : {}),
    ...(o.bestOf !== undefined ? { bestOf: o.bestOf } : {}),
    ...(o.sampleLen !== undefined ? { sampleLen: o.sampleLen } : {}),
    ...(o.prompt !== undefined && o.prompt !== '' ? { initialPrompt: o.prompt } : {}),
    ...(o.wordTimestamps ? { wordTimestamps: true } : {}),
  };
}

/** Loads the model the options name, with a download bar on first use. */
export async function loadModel(o: Pick<TranscribeCliOptions, 'model' | 'dtype' | 'device' | 'threads'>): Promise<Whisper> {
  const progress = progressReporter();
  let w: Whisper;
  try {
    w = await loadWhisper(o.model, {
      ...(o.dtype !== undefined ? { dtype: o.dtype } : {}),
      engine: { device: o.device, ...(o.threads !== undefined ? { intraOpThreads: o.threads } : {}) },
      onProgress: progress.onProgress!,
      onFetched: progress.onFetched!,
    });
  } finally {
    progress.stop();
  }
  // Which device was chosen and why, when there was a choice (the CPU is the default, unasked).
  if (o.device !== 'cpu') process.stderr.write(`earshot: device ${describeDevice(w.model.device)}\n`);
  // On a GPU, the dtype too: its default there is fp16 where the model has it (models/dtype.ts).
  if (w.model.device.device !== 'cpu') process.stderr.write(`earshot: dtype ${formatDtypeSpec(w.resolved.dtype)}: ${w.resolved.dtypeReason}\n`);
  return w;
}

/** A bar of seconds of audio done out of the file's length, on a terminal only. */
function audioBar(file: string): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { format: '{file} [{bar}] {percentage}% | {done}/{length} s of audio', stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0, { file: basename(file), done: '0.0', length: total.toFixed(1) });
      }
      bar.update(done, { done: done.toFixed(1) });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

async function transcribeFile(w: Whisper, file: string, out: string | undefined, o: TranscribeCliOptions): Promise<void> {
  const bar = audioBar(file);
  try {
    const audio = await decodeAudio(file, { maxDurationS: o.maxDuration });
    bar.update(0, audio.durationS);
    const decoded = await transcribeWithVadAll(w, audio.samples, { ...decodingOptions(o), onProgress: (done, total) => bar.update(done, total) });
    const result = await convertTranscription(decoded, o.zh);
    bar.update(audio.durationS, audio.durationS); // the last window reports whole mel frames, a hair short
    let body = render(result, FORMAT_OUTPUT[o.format].render);
    if (!body.endsWith('\n')) body += '\n';
    bar.stop();
    if (out === undefined) {
      process.stdout.write(body);
    } else {
      if (o.outputDir !== undefined) await mkdir(o.outputDir, { recursive: true });
      await writeFile(out, body);
      process.stdout.write(`${out}\n`);
    }
  } finally {
    bar.stop();
  }
}

/** Transcribes `files` with validated options; sets a non-zero exit code when any file failed. */
export async function runTranscribe(files: string[], o: TranscribeCliOptions): Promise<void> {
  const outs = outputPaths(files, o);
  const w = await loadModel(o);
  let failures = 0;
  for (const [i, file] of files.entries()) {
    try {
      await transcribeFile(w, file, outs[i], o);
    } catch (e) {
      failures++;
      const reason = e instanceof Error ? e.message : String(e);
      process.stderr.write(`earshot: ${file}: ${reason.split('\n')[0]}\n`);
    }
  }
  if (failures > 0) process.exitCode = 1;
}
