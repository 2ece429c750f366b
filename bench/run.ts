// `npm run bench -- <name> [args]`: runs bench/<name>.ts. Each benchmark measures earshot and its
// baseline in the same run and prints the ratio, so figures from different machines are comparable.
import '../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off in every bench
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3));

const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${available.join('|')}> [options]\n`);
  process.exit(name ? 1 : 0);
}
const mod = (await import(new URL(`${name}.ts`, here).href)) as {
  run: (args: string[]) => Promise<void>;
};
await mod.run(rest);
