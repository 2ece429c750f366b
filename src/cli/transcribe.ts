// `earshot transcribe <files...>`: the CLI's main job, as a commander sub-command. This file holds
// the options, their help and the examples; it validates the options before anything heavy loads,
// then hands over to transcribe-run.ts (imported on use, so other commands start quickly).
import { Command } from 'commander';
import { ZH_SCRIPTS } from '../output/chinese.ts';
import { MAX_SAMPLE_LEN } from '../decoding/sot.ts';
import { CLI_FORMATS, DEFAULTS, DEVICE_HELP, parseTranscribeOptions } from './transcribe-options.ts';

const EXAMPLES = `
Output:
  One file and no --output-dir: the transcript goes to stdout.
  Several files and no --output-dir: each is written to <name>.<ext> in the current directory
  (as openai/whisper's CLI does), e.g. talk.srt for talk.mp3 with --format srt; the paths written
  are printed on stdout. json and verbose_json files end in .json.
  A file that fails is reported on stderr as one line "earshot: <file>: <reason>"; the others are
  still transcribed, and the exit code is 1.

Examples:
  earshot transcribe samples/jfk.wav
  earshot transcribe talk.mp3 --model small --language de --format srt > talk.srt
  earshot transcribe a.wav b.m4a --format vtt --output-dir subs/
  earshot transcribe interview.webm --task translate --model ./my-model-folder
  earshot transcribe news-zh.wav --language zh --zh simplified
  EARSHOT_OFFLINE=1 earshot transcribe note.wav --model tiny.en --temperature 0 --beam-size 5
`;

export function transcribeCommand(): Command {
  return new Command('transcribe')
    .description('transcribe (or translate to English) audio files; the model is pulled on first use')
    .argument('<files...>', 'audio files: WAV, MP3, M4A/AAC, WebM/Opus, FLAC, Ogg… (anything ffmpeg reads)')
    .option('--model <model>', 'catalogue name (tiny, base, small, …, see `earshot models list`), hub repository "owner/name", or a local model folder such as ./my-model', DEFAULTS.model)
    .option('--dtype <spec>', "weights precision: fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4, or per graph \"encoder=fp32,decoder=q8\" (default: the model's, fp32 for tiny/base/small; on a GPU, fp16 where the model has it)")
    .option('--language <lang>', 'spoken language as a code ("en") or name ("english"), or auto to detect it from the first 30 s', DEFAULTS.language)
    .option('--task <task>', 'transcribe (keep the language) or translate (into English)', DEFAULTS.task)
    .option('--format <format>', `output format: ${CLI_FORMATS.join(', ')} (verbose_json has segments with timings, as OpenAI's API)`, DEFAULTS.format)
    .option('--output-dir <dir>', 'write <name>.<ext> files into this folder (created if needed) instead of stdout')
    .option('--beam-size <n>', 'beam search with n beams at temperature 0 (default: greedy)')
    .option('--best-of <n>', 'candidates sampled at each temperature above 0, the likeliest kept (default: 1)')
    .option('--sample-len <n>', `most tokens decoded per 30 s window, 1 to ${MAX_SAMPLE_LEN} (default: ${MAX_SAMPLE_LEN}); a cap on runaway repetition`)
    .option('--temperature <t>', 'one sampling temperature from 0 to 1, with no fallback (default: 0, then 0.2, 0.4, … 1.0 when a window looks repetitive or unsure)')
    .option('--prompt <text>', 'text the model sees as preceding the audio: spellings, names, style')
    .option('--no-vad-filter', 'decode the whole file, silence included (default: only the speech Silero VAD finds, which keeps the model from inventing text on silence)')
    .option('--no-condition-on-previous-text', 'do not feed each window the text of the previous ones (less repetition, less consistency)')
    .option('--threads <n>', 'threads inside one operator (default: 0, one per core)')
    .option('--device <device>', DEVICE_HELP, DEFAULTS.device)
    .option('--max-duration <seconds>', 'longest audio accepted per file', DEFAULTS.maxDuration)
    .option('--zh <script>', `Chinese output script: ${ZH_SCRIPTS.join(', ')} (simplified/traditional convert Mandarin and Cantonese text, Taiwan standard; as-is keeps what the model wrote)`, DEFAULTS.zh)
    .option('--word-timestamps', "time every word (needs a model whose decoder outputs cross-attention weights, such as the hub's *_timestamped exports); verbose_json segments get their words", false)
    .addHelpText('after', EXAMPLES)
    .action(async (files: string[], raw: Record<string, unknown>) => {
      const opts = parseTranscribeOptions(raw);
      const { runTranscribe } = await import('./transcribe-run.ts');
      await runTranscribe(files, opts);
    });
}
