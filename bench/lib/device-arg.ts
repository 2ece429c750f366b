// `--device` for the benches that run a model: the engine's device names (cpu, cuda, webgpu, auto),
// checked once here. A bench runs its baseline on the same device, so its ratios compare like with like.
import { DEVICES, type DeviceRequest } from '../../src/engine/execution.ts';

/** The parseArgs entry. */
export const DEVICE_OPTION = { device: { type: 'string', default: 'cpu' } } as const;

export function deviceArg(value: string | undefined): DeviceRequest {
  if ((DEVICES as readonly string[]).includes(value ?? '')) return value as DeviceRequest;
  throw new Error(`--device must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(value)}`);
}
