// What client-level DP costs an agent per round: encodeSecureInput (apps/agent) with and without
// the round's DP noise, on the real encoding path (CSPRNG Gaussian noise in float64, the DP grid,
// stochastic rounding), for the model sizes fedclr trains. Prints one JSON line per dimension:
// median wall ms over --reps runs of each, the extra ms DP adds, and the CSPRNG Gaussian
// throughput. The round time this is compared with comes from simulate's report (docs/results.md).
//
//   node scripts/dist/bench-dp.js                      d in 266,496 (convnet-s), 1,000,000; n 10
//   node scripts/dist/bench-dp.js --d 266496 --n 100 --reps 7
import { parseArgs } from 'node:util';
import { encodeSecureInput } from '@fedclr/agent';
import { cryptoGaussian, deriveDpEncoding, deriveFixedPoint, deriveSecAggParams } from '@fedclr/secagg';

const { values } = parseArgs({
  options: { d: { type: 'string', default: '266496,1000000' }, n: { type: 'string', default: '10' }, reps: { type: 'string', default: '5' }, sigma: { type: 'string', default: '1' } },
  strict: true,
});
const dims = values.d.split(',').map(Number);
const cohorts = values.n.split(',').map(Number);
const reps = Number(values.reps);
const sigma = Number(values.sigma);
const CLIP = 1;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const time = (fn: () => void): number => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

for (const n of cohorts) {
  const params = deriveSecAggParams({ cohortSize: n, dropoutFraction: 0.2, corruptFraction: 0.1 });
  for (const d of dims) {
    // A clipped delta of norm C (the worst case for nothing: the cost does not depend on values).
    const delta = new Float32Array(d).map((_, i) => Math.sin(i) * (CLIP / Math.sqrt(d / 2)));
    const plainEncoding = deriveFixedPoint({ dimension: d, clip: 0.1, cohortSize: n, maxWeight: 10_000 });
    const dpEncoding = deriveDpEncoding({ noiseMultiplier: sigma, clipNorm: CLIP }, d, params);
    const plain: number[] = [];
    const dp: number[] = [];
    for (let r = 0; r < reps; r++) {
      plain.push(time(() => encodeSecureInput({ delta, exampleCount: 600, encoding: plainEncoding, params })));
      dp.push(time(() => encodeSecureInput({ delta, exampleCount: 600, encoding: dpEncoding, params, dp: { noiseMultiplier: sigma, clipNorm: CLIP } })));
    }
    const out = new Float64Array(d);
    const gaussMs = median(Array.from({ length: reps }, () => time(() => cryptoGaussian(out))));
    console.log(
      JSON.stringify({
        bench: 'dp-encoding',
        dimension: d,
        cohort: n,
        noiseMultiplier: sigma,
        reps,
        encodeMs: Math.round(median(plain) * 10) / 10,
        encodeDpMs: Math.round(median(dp) * 10) / 10,
        dpExtraMs: Math.round((median(dp) - median(plain)) * 10) / 10,
        gaussianMs: Math.round(gaussMs * 10) / 10,
        gaussiansPerSec: Math.round(d / (gaussMs / 1000)),
      }),
    );
  }
}
