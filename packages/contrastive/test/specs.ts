// Model specs shared by the training tests. Not a test file itself.
import type { GraphSpec } from '@fedclr/tensor';

/** No BatchNorm: per-worker batch statistics would (rightly) make a parallel engine differ from the in-process one. */
export const noBatchNorm: GraphSpec = {
  name: 'plain-cnn',
  input: { height: 8, width: 8, channels: 1 },
  nodes: [
    { op: 'conv', name: 'c1', input: 'input', filters: 4, kernel: 3, stride: 1 },
    { op: 'relu', name: 'r1', input: 'c1' },
    { op: 'conv', name: 'c2', input: 'r1', filters: 8, kernel: 3, stride: 2 },
    { op: 'relu', name: 'r2', input: 'c2' },
    { op: 'gap', name: 'representation', input: 'r2' },
    { op: 'dense', name: 'projection', input: 'representation', units: 6 },
  ],
  output: 'projection',
};
