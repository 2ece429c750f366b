// Reads ONNX external data (`*.onnx_data`, used by exports over protobuf's 2 GB limit) into the
// tensors themselves. The quantiser always writes one self-contained file: 8-bit weights are a
// quarter of fp32, so every Whisper size fits in one file once quantised (large-v3's ~6 GB of fp32
// weights become ~1.6 GB); a result that would still be over 2 GB is refused with a clear error.
import { closeSync, openSync, readSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { EarshotError } from '../../errors.ts';
import { onnx, subgraphs, type Graph, type Model, type Tensor } from './onnx.ts';

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** The tensors of every graph and subgraph: initializers and those inside Constant-like attributes. */
function allTensors(graph: Graph): Tensor[] {
  const nodes = graph.node ?? [];
  return [
    ...(graph.initializer ?? []),
    ...nodes.flatMap((n) => (n.attribute ?? []).flatMap((a) => [...(a.t ? [a.t] : []), ...(a.tensors ?? [])])),
    ...nodes.flatMap((n) => subgraphs(n).flatMap(allTensors)),
  ];
}

function entry(t: Tensor, key: string): string | undefined {
  return t.externalData?.find((e) => e.key === key)?.value ?? undefined;
}

/** The data file of `t`, which ONNX requires to be a relative path inside the model's folder. */
function dataPath(dir: string, t: Tensor): string {
  const location = entry(t, 'location');
  const clean = location === undefined ? '' : normalize(location);
  if (clean === '' || isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`)) {
    throw new EarshotError(
      'invalid_argument',
      'bad_external_data',
      `tensor ${t.name}: external data location ${JSON.stringify(location)} must be a file beside the model`,
    );
  }
  return join(dir, clean);
}

/**
 * Moves every external tensor's bytes into its `raw_data`, reading `length` bytes at `offset` of
 * its data file (files are read in place, so data files over 2 GB work). `dir` is the folder of the
 * .onnx file. Returns the number of bytes read.
 */
export function inlineExternalData(model: Model, dir: string): number {
  const fds = new Map<string, number>();
  let total = 0;
  try {
    for (const t of allTensors(model.graph ?? {})) {
      if (t.dataLocation !== EXTERNAL) continue;
      const path = dataPath(dir, t);
      let fd = fds.get(path);
      if (fd === undefined) {
        try {
          fd = openSync(path, 'r');
        } catch (e) {
          throw new EarshotError('model_not_found', 'missing_external_data', `tensor ${t.name}: cannot open external data ${path}: ${(e as Error).message}`);
        }
        fds.set(path, fd);
      }
      const offset = Number(entry(t, 'offset') ?? 0);
      const length = Number(entry(t, 'length') ?? NaN);
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new EarshotError('invalid_argument', 'bad_external_data', `tensor ${t.name}: bad external data offset/length`);
      }
      const bytes = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        const n = readSync(fd, bytes, done, length - done, offset + done);
        if (n === 0) {
          throw new EarshotError('invalid_argument', 'bad_external_data', `tensor ${t.name}: ${path} ends before byte ${offset + length}`);
        }
        done += n;
      }
      t.rawData = bytes;
      // Unset, not set to the defaults, so the tensor encodes exactly as one that was never external.
      delete t.dataLocation;
      delete t.externalData;
      total += length;
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return total;
}
