// The transcription backend of a server that holds its models: a request takes a counted lease of
// the model it names from the registry (so a hot swap or an idle unload never releases the model
// under it) and decodes in this process (runtime/transcriber.ts's runOnWhisper).
import { runOnWhisper, taskError, type Task, type Transcriber, type TranscriptionTarget } from '../runtime/transcriber.ts';
import type { ModelRegistry } from './model-registry.ts';

export class LocalTranscriber implements Transcriber {
  constructor(private readonly host: ModelRegistry) {}

  async admit(): Promise<void> {
    this.host.assertAvailable(); // 503 while no model can serve
    this.host.assertCapacity(); // 429 when every queue is full
  }

  async open(model: string | undefined, task: Task): Promise<TranscriptionTarget> {
    const lease = await this.host.lease(model);
    const refused = taskError(lease.whisper.tokenizer.isMultilingual, task, lease.id);
    if (refused) {
      lease.release();
      throw refused;
    }
    return {
      id: lease.id,
      run: (samples, options, hooks) => runOnWhisper(lease.whisper, samples, options, hooks),
      release: () => lease.release(),
    };
  }
}
