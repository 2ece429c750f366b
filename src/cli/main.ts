// The `earshot` command line: one commander program, one module per sub-command. This file only
// wires them together and turns a typed error into one line on stderr and a non-zero exit.
import '../engine/telemetry-off.ts'; // first: onnxruntime's telemetry off in every command (see the module)
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { isEarshotError } from '../errors.ts';
import { evalCommand } from './eval.ts';
import { modelsCommand } from './models.ts';
import { quantizeCommand } from './quantize.ts';
import { serveCommand } from './serve.ts';
import { transcribeCommand } from './transcribe.ts';
import { workerCommand } from './worker.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('earshot')
    .description('Local speech recognition: Whisper ONNX models on your own machine.')
    .version(pkg.version)
    .showHelpAfterError();
  program.addCommand(transcribeCommand());
  program.addCommand(modelsCommand());
  program.addCommand(evalCommand());
  program.addCommand(quantizeCommand());
  program.addCommand(serveCommand());
  program.addCommand(workerCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const message = isEarshotError(e) || e instanceof Error ? e.message : String(e);
    process.stderr.write(`earshot: ${message}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
