// AudioWorklet processor for the page's microphone: downmixed mono input at the AudioContext's
// rate in, 16 kHz signed 16-bit little-endian frames of `frameSamples` (200 ms) out to the main
// thread, which sends them as binary WebSocket messages to /v1/stream. On a 'flush' message it
// posts the last, shorter frame and stops.
import { Downsampler } from './downsampler.js';

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameSamples = 3200 } = options.processorOptions ?? {};
    this.down = new Downsampler(sampleRate, targetRate);
    this.frameSamples = frameSamples;
    this.frame = new Int16Array(frameSamples);
    this.fill = 0;
    this.sumSquares = 0;
    this.stopped = false;
    this.port.onmessage = (event) => {
      if (event.data !== 'flush' || this.stopped) return;
      this.stopped = true;
      if (this.fill > 0) this.post(this.frame.slice(0, this.fill));
      this.port.postMessage({ type: 'flushed' });
    };
  }

  post(frame) {
    // Level of the frame (RMS, 0..1) for the page's meter.
    const level = Math.sqrt(this.sumSquares / Math.max(1, frame.length));
    this.port.postMessage({ type: 'frame', pcm: frame.buffer, level }, [frame.buffer]);
    this.sumSquares = 0;
  }

  process(inputs) {
    if (this.stopped) return false;
    const channel = inputs[0]?.[0];
    if (!channel) return true; // no input connected yet
    const y = this.down.push(channel);
    for (let i = 0; i < y.length; i++) {
      const v = Math.max(-1, Math.min(1, y[i]));
      this.sumSquares += v * v;
      this.frame[this.fill++] = Math.round(v < 0 ? v * 32768 : v * 32767);
      if (this.fill === this.frameSamples) {
        this.post(this.frame);
        this.frame = new Int16Array(this.frameSamples);
        this.fill = 0;
      }
    }
    return true;
  }
}

registerProcessor('earshot-capture', CaptureProcessor);
