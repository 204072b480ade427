// fedclr partition: the folders hold exactly simulate's parts, byte for byte, and bad --out is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageView, loadFashionMnist, readImageFolder } from '@fedclr/data';
import { main } from '../src/main.js';
import { splitSimulation } from '../src/federation.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('fedclr partition', () => {
  const spec = { dataset: 'fashion-mnist' as const, clients: 3, partition: { kind: 'dirichlet' as const, alpha: 0.5 }, seed: 5, limit: 300 };
  const flags = ['--clients', '3', '--partition', 'dirichlet', '--alpha', '0.5', '--seed', '5', '--limit', '300'];

  it("writes simulate's parts as PNG folders that read back as the same images, in the same order", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-partition-'));
    try {
      const r = await run(['partition', ...flags, '--out', join(dir, 'parts'), '--json']);
      assert.equal(r.code, 0, r.err.join('\n'));
      const train = await loadFashionMnist('train', { limit: 300 });
      const { parts } = splitSimulation(train.labels, spec);
      const report = JSON.parse(r.out.at(-1) as string) as { sizes: number[] };
      assert.deepEqual(report.sizes, parts.map((p) => p.length));
      assert.deepEqual(readdirSync(join(dir, 'parts')).sort(), ['agent-0', 'agent-1', 'agent-2', 'partition.json']);
      for (const [client, indices] of parts.entries()) {
        const folder = await readImageFolder(join(dir, 'parts', `agent-${client}`), { height: 28, width: 28, channels: 1 });
        assert.equal(folder.skipped.length, 0);
        assert.equal(folder.count, indices.length);
        indices.forEach((index, k) => assert.deepEqual(Uint8Array.from(imageView(folder, k)), Uint8Array.from(imageView(train, index)), `agent ${client}, image ${index}`));
      }
      const recorded = JSON.parse(readFileSync(join(dir, 'parts', 'partition.json'), 'utf8')) as { seed: number; clients: number };
      assert.equal(recorded.seed, 5);
      assert.equal(recorded.clients, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an --out that is not empty, and leaves it untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-partition-'));
    try {
      mkdirSync(join(dir, 'parts'));
      writeFileSync(join(dir, 'parts', 'keep.txt'), 'mine');
      const r = await run(['partition', ...flags, '--out', join(dir, 'parts')]);
      assert.equal(r.code, 2);
      assert.match(r.err.join('\n'), /not empty/);
      assert.deepEqual(readdirSync(join(dir, 'parts')), ['keep.txt']);
      assert.deepEqual(readdirSync(dir), ['parts'], 'no staging directory left behind');
      assert.equal((await run(['partition', ...flags])).code, 2, '--out is required');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
