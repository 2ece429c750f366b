// `npx tsx scripts/webgpu-matmul-repro.ts [--out FILE.onnx]`: the smallest graph that crashes
// onnxruntime-node 1.30's WebGPU provider: one MatMul of [2, 0] x [0, 16] (an inner dimension of 0,
// whose product is a [2, 16] of zeros). Each provider runs it in a child process, so a segfault is
// reported rather than taking this script down. Exits 1 while the crash reproduces, 0 once the
// WebGPU provider gives the CPU's answer (then the workaround in scripts/test-model/blocks.ts,
// matMulMaybeEmpty, can go). The write-up is scripts/test-model/WEBGPU.md.
import '../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/onnx-graph.ts';

const A = [2, 0];
const B = [0, 16];

function graph(): Uint8Array {
  const g = new GraphBuilder('matmul_k0');
  const a = g.input('a', 'float', A);
  const b = g.input('b', 'float', B);
  g.output(g.op1('MatMul', [a, b]), 'y', 'float', [A[0]!, B[1]!]);
  return g.toBytes('earshot-webgpu-repro');
}

/** Child: runs the graph on one provider and prints the output's shape and values as JSON. */
async function child(provider: string): Promise<void> {
  const session = await ort.InferenceSession.create(graph(), { executionProviders: [provider], logSeverityLevel: 3 });
  const out = await session.run({
    a: new ort.Tensor('float32', new Float32Array(0), A),
    b: new ort.Tensor('float32', new Float32Array(0), B),
  });
  const y = out.y!;
  process.stdout.write(`${JSON.stringify({ dims: y.dims, values: Array.from(y.data as Float32Array) })}\n`);
}

function run(provider: string): { ok: true; dims: number[]; values: number[] } | { ok: false; why: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', provider], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status === 0) return { ok: true, ...(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { dims: number[]; values: number[] }) };
  const why = r.signal ? `killed by ${r.signal}` : `exit ${r.status}: ${r.stderr.trim().split('\n').at(-1)}`;
  return { ok: false, why };
}

const { values } = parseArgs({ options: { child: { type: 'string' }, out: { type: 'string' } } });
if (values.child) {
  await child(values.child);
} else {
  if (values.out) writeFileSync(values.out, graph());
  const cpu = run('cpu');
  const gpu = run('webgpu');
  const show = (r: ReturnType<typeof run>) => (r.ok ? `dims [${r.dims}], ${r.values.every((v) => v === 0) ? 'all zeros' : 'NOT zeros'}` : r.why);
  process.stdout.write(`MatMul [${A}] x [${B}]\n  cpu:    ${show(cpu)}\n  webgpu: ${show(gpu)}\n`);
  const same = cpu.ok && gpu.ok && JSON.stringify(cpu) === JSON.stringify(gpu);
  process.stdout.write(same ? 'the WebGPU provider agrees with the CPU: the bug is gone\n' : 'reproduced: the WebGPU provider fails where the CPU gives zeros\n');
  process.exitCode = same ? 0 : 1;
}
