// `earshot models list | pull | rm | path`: the model store from the command line. A progress bar
// (cli-progress, on stderr) is shown only on a terminal; otherwise each fetched file is one line on
// stderr, so scripts and logs stay readable. stdout carries only the result.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { listModels, removeModel, type ListedModel } from '../models/cache.ts';
import { formatDtypeSpec } from '../models/dtype.ts';
import { resolveModel, type ResolveOptions, type ResolvedModel } from '../models/store.ts';

interface ModelOpts {
  dtype?: string;
  revision?: string;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Progress reporting for one command: a bar per file on a TTY, a line per file otherwise. */
export function progressReporter(): Pick<ResolveOptions, 'onProgress' | 'onFetched'> & { stop(): void; fetched: string[] } {
  const fetched: string[] = [];
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let current: string | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    current = undefined;
  };
  return {
    fetched,
    stop,
    onProgress: (p) => {
      if (!tty) return;
      if (p.file !== current) {
        stop();
        current = p.file;
        bar = new cliProgress.SingleBar(
          { format: '{file} [{bar}] {percentage}% | {value}/{total} bytes', stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total ?? 0, 0, { file: p.file });
      }
      if (p.total !== undefined) bar!.setTotal(p.total);
      bar!.update(p.received);
    },
    onFetched: (file) => {
      fetched.push(file);
      if (tty) stop();
      else process.stderr.write(`fetched ${file}\n`);
    },
  };
}

async function resolveWithProgress(model: string, opts: ModelOpts): Promise<{ m: ResolvedModel; fetched: string[] }> {
  const progress = progressReporter();
  try {
    const m = await resolveModel(model, {
      ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
      ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
      onProgress: progress.onProgress!,
      onFetched: progress.onFetched!,
    });
    return { m, fetched: progress.fetched };
  } finally {
    progress.stop();
  }
}

function listTable(rows: ListedModel[]): string {
  const table = [
    ['NAME', 'REPOSITORY', 'DEFAULT', 'DOWNLOAD', 'CACHED'],
    ...rows.map((r) => [
      r.name,
      r.repo,
      r.defaultDtype ?? '-',
      r.approxMB !== undefined ? `~${r.approxMB} MB` : '-',
      r.cachedBytes > 0 ? `${r.cachedDtypes.join(',') || 'partial'} (${mb(r.cachedBytes)})` : '-',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function modelsCommand(): Command {
  const cmd = new Command('models').description('list, download, locate and delete models (cache: $EARSHOT_HOME, default ~/.cache/earshot)');

  cmd
    .command('list')
    .description('the model catalogue, with what is cached and its size on disk')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      const rows = await listModels();
      process.stdout.write(opts.json ? JSON.stringify(rows, null, 2) + '\n' : listTable(rows));
    });

  cmd
    .command('pull')
    .description('download a model (catalogue name, hub repository "owner/name") into the cache')
    .argument('<model>')
    .option('--dtype <spec>', 'weights precision: fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4, or per graph "encoder=fp32,decoder=q8"')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .action(async (model: string, opts: ModelOpts) => {
      const { m, fetched } = await resolveWithProgress(model, opts);
      process.stdout.write(
        `${m.ref.label} (${formatDtypeSpec(m.dtype)}): ${fetched.length === 0 ? 'already cached' : `fetched ${fetched.length} files`} in ${m.dir}\n`,
      );
    });

  cmd
    .command('path')
    .description('print the local folder of a model, fetching it first if needed (fails offline when not cached)')
    .argument('<model>')
    .option('--dtype <spec>', 'weights precision, as for pull')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .action(async (model: string, opts: ModelOpts) => {
      const { m } = await resolveWithProgress(model, opts);
      process.stdout.write(`${m.dir}\n`);
    });

  cmd
    .command('rm')
    .description('delete a model from the cache')
    .argument('<model>')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .action(async (model: string, opts: ModelOpts) => {
      const { dir, bytes } = await removeModel(model, opts.revision !== undefined ? { revision: opts.revision } : {});
      process.stdout.write(`removed ${dir} (${mb(bytes)})\n`);
    });

  return cmd;
}
