// Types of downsampler.js for the Node tests that import it (the page itself loads the .js).
export declare class Downsampler {
  constructor(fromRate: number, toRate?: number);
  push(input: Float32Array): Float32Array;
}
