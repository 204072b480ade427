// Argument errors of coordinator, agent and simulate; the simulation's data split; signals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/main.js';
import { defaultViewSize } from '@fedclr/contrastive';
import { splitSimulation } from '../src/federation.js';

const BIN = fileURLToPath(new URL('../../bin/fedclr.js', import.meta.url));

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('fedclr coordinator | agent | simulate: argument errors', () => {
  const cases: [string[], RegExp][] = [
    [['simulate', '--clients', '0'], /--clients must be an integer >= 1, got '0'/],
    [['simulate', '--partition', 'random'], /--partition must be iid, dirichlet or shards, got 'random'/],
    [['simulate', '--partition', 'dirichlet', '--alpha', '0'], /--alpha must be a number > 0, got '0'/],
    [['simulate', '--clients', '2', '--aggregation', 'secure'], /--aggregation secure needs a cohort of at least 3 agents/],
    [['simulate', '--aggregation', 'masked'], /--aggregation must be plain or secure, got 'masked'/],
    [['simulate', '--clients', '3', '--cohort', '4'], /--cohort 4 exceeds --clients 3/],
    [['simulate', '--dataset', 'cifar10'], /unknown --dataset 'cifar10'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--dataset', 'fashion-mnist', '--client', '0/2', '--file-list', 'x'], /--file-list, --skipped-report and --max-memory go with --data DIR, not with --dataset/],
    [['train', '--data', '.', '--size', '4', '--steps', '1'], /--size must be an integer in \[8, 512\], got 4/],
    [['simulate', '--optimizer', 'rmsprop'], /--optimizer must be adam, sgd or momentum/],
    [['simulate', '--strategy', 'fedyogi'], /--strategy must be fedavg, fedavgm or fedadam/],
    [['simulate', '--server-lr', '0'], /--server-lr must be a number > 0, got '0'/],
    [['coordinator', '--server-lr', 'fast'], /--server-lr must be a number > 0, got 'fast'/],
    [['simulate', '--encoder', 'vit'], /--encoder must be convnet-s or resnet-s, got 'vit'/],
    [['simulate', '--widths', '32,64'], /--widths takes three positive integers for convnet-s, e\.g\. 32,64,256; got '32,64'/],
    [['simulate', '--widths', '32,0,64'], /--widths takes three positive integers for convnet-s/],
    [['simulate', '--encoder', 'resnet-s', '--widths', '8,16,32'], /--widths takes three positive integers for convnet-s/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--head', '512'], /--head takes two positive integers \(hidden, output\), e\.g\. 512,128; got '512'/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--view-size', '40'], /--view-size must be between 4 and the image size 28, got 40/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--view-size', '2'], /--view-size must be an integer >= 4, got '2'/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--local-size', '8'], /--local-size needs --local-views M/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--local-views', '2', '--local-size', '40'], /--local-size must be between 4 and the image size 28, got 40/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--local-views', '2', '--crop-min', '0.1'], /smallest crop \(--crop-min\) above 0\.1, got 0\.1/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--local-views', '2', '--loss', 'dcl'], /--local-views needs --loss ntxent \(--loss dcl takes two views per image\)/],
    [['simulate', '--loss', 'supcon'], /--loss supcon needs class labels: give --labels/],
    [['simulate', '--labels', 'folders', '--loss', 'supcon'], /--labels folders reads the sub-folder names of --data DIR; with --dataset give --labels dataset/],
    [['simulate', '--labels', 'dataset'], /--labels: --loss ntxent is label-free/],
    [['coordinator', '--loss', 'contrastive'], /--loss must be one of ntxent, dcl, moco, triplet, margin, supcon, got 'contrastive'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--dataset', 'fashion-mnist', '--client', '0/2', '--labels', 'folders'], /--labels folders reads the sub-folder names of --data DIR/],
    [['simulate', '--crop-min', '1.5'], /--crop-min must be in \(0, 1\], got 1\.5/],
    [['simulate', '--view-size', '32'], /--view-size must be between 4 and the image size 28, got 32/],
    [['simulate', '--view-size', '20.5'], /--view-size must be an integer >= 4, got '20\.5'/],
    [['simulate', '--lr-schedule', 'linear'], /--lr-schedule must be constant or cosine, got 'linear'/],
    [['simulate', '--weight-decay=-0.5'], /--weight-decay must be a number >= 0, got '-0\.5'/],
    [['eval', '--baseline', 'raw', '--l2=-1'], /--l2 must be a number >= 0, got '-1'/],
    [['simulate', '--crop-min', '0'], /--crop-min must be a number > 0, got '0'/],
    [['simulate', '--fedprox-mu=-0.1'], /--fedprox-mu must be a number in \[0, 1000\], got '-0\.1'/],
    [['simulate', '--fedprox-mu', 'strong'], /--fedprox-mu must be a number in \[0, 1000\], got 'strong'/],
    [['agent', '--data', 'x'], /give --coordinator URL/],
    [['agent', '--coordinator', 'localhost:8080', '--data', 'x'], /--coordinator must be an http\(s\):\/\/ URL/],
    [['agent', '--coordinator', 'http://127.0.0.1:1'], /give exactly one of --data DIR .* or --dataset fashion-mnist --client I\/N/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--dataset', 'fashion-mnist', '--client', '3/3'], /--client must be I\/N with 0 <= I < N, got '3\/3'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--dataset', 'fashion-mnist'], /--dataset needs --client I\/N/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--client', '0/2'], /--client and --partition go with --dataset/],
    [['coordinator', '--strategy', 'fedyogi'], /--strategy must be one of fedavg, fedavgm, fedadam, got 'fedyogi'/],
    [['coordinator', '--aggregation', 'masked'], /--aggregation must be one of secure, plain/],
    [['coordinator', '--channels', '2'], /--channels must be 1 or 3, got 2/],
    [['coordinator', '--config', '/nonexistent/fedclr.json'], /cannot read --config \/nonexistent\/fedclr.json/],
    [['coordinator', '--port', 'http'], /--port must be an integer >= 0, got 'http'/],
    [['coordinator', '--widths', '8,x,32'], /--widths takes three positive integers for convnet-s/],
    [['coordinator', '--fedprox-mu', '2000'], /--fedprox-mu must be a number in \[0, 1000\], got '2000'/],
    [['coordinator', '--lr-schedule', 'step'], /--lr-schedule must be one of constant, cosine, got 'step'/],
    // The recipe is the coordinator's: an agent flag that would change it is refused, naming the flag.
    ...['--crop-min', '--view-size', '--encoder', '--widths', '--size', '--channels', '--weight-decay', '--batch', '--lr', '--temperature', '--optimizer', '--strength', '--loss', '--margin', '--mining'].map(
      (flag): [string[], RegExp] => [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', flag, '1'], new RegExp(`${flag} is not an agent flag: the coordinator sends the training recipe .* set it on fedclr coordinator`)],
    ),
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--trust-on-first-use', '--data', '/nonexistent/fedclr-images'], /--data \/nonexistent\/fedclr-images is not a readable directory/],
    [['train', '--dataset', 'fashion-mnist', '--steps', '1', '--optimizer', 'nesterov'], /--optimizer must be adam, sgd or momentum, got 'nesterov'/],
    [['coordinator', '--optimizer', 'nesterov'], /--optimizer must be adam, sgd or momentum, got 'nesterov'/],
    [['coordinator', '--view-size', '29'], /--view-size must be between 4 and the image size 28, got 29/],
    [['coordinator', '--size', '32', '--channels', '3', '--widths', '8,16,32'], /--widths takes three positive integers for convnet-s.*with --encoder resnet-s/],
    [['simulate', '--train-slots=-1'], /--train-slots must be an integer >= 0, got '-1'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--train-slots', '2'], /--train-slots takes only 'ipc'/],
    // Trust and policy (issue 11): no way to trust the coordinator, bad keys, bad policy values.
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x'], /give --coordinator-key KEY \(the coordinator's public key: .*GET http:\/\/127\.0\.0\.1:1\/api\/status returns it as coordinatorKey\), or --trust-on-first-use/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--coordinator-key', 'abc'], /--coordinator-key must be the coordinator's 32-byte Ed25519 public key as 64 hex characters or base64, got 'abc'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--coordinator-key', '00'.repeat(32)], /--coordinator-key must be .*small-order/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--coordinator-key', 'ab'.repeat(32), '--trust-on-first-use'], /either --coordinator-key KEY or --trust-on-first-use, not both/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--min-cohort=-1'], /--min-cohort must be an integer >= 1, got '-1'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--min-cohort', '2.5'], /--min-cohort must be an integer >= 1, got '2\.5'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--min-noise-multiplier=-1'], /--min-noise-multiplier must be a number >= 0, got '-1'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--min-noise-multiplier', 'lots'], /--min-noise-multiplier must be a number >= 0, got 'lots'/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--allow-plain', '--require-secure'], /either --allow-plain or --require-secure, not both/],
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--trust-on-first-use', '--require-sampling', '--allow-coordinator-sampling'], /either --require-sampling or --allow-coordinator-sampling, not both/],
    [['coordinator', '--sampling-rate', '2'], /--sampling-rate must be a number in \(0, 1\]/],
    [['simulate', '--sampling-rate', '0.5', '--cohort', '2'], /--cohort and --sampling-rate exclude each other/],
    // embed, search, probe, classify: refused before any model or image is read.
    [['embed', '--dataset', 'fashion-mnist', '--out', 'e.npz'], /give --model DIR/],
    [['embed', '--model', 'm', '--dataset', 'fashion-mnist'], /give --out FILE \(the embeddings file, \.npz\)/],
    [['embed', '--model', 'm', '--dataset', 'fashion-mnist', '--out', 'e.npz', '--ann', 'maybe'], /--ann must be auto, on or off, got 'maybe'/],
    [['embed', '--model', 'm', '--dataset', 'fashion-mnist', '--out', 'e.npz', '--m', '1'], /--m must be an integer >= 2, got '1'/],
    [['search', '--model', 'm', '--query', 'q.png'], /give --model DIR and --index FILE/],
    [['search', '--model', 'm', '--index', 'e.npz'], /give at least one --query IMAGE/],
    [['search', '--model', 'm', '--index', 'e.npz', '--query', 'q.png', '-k', '0'], /--k must be an integer >= 1, got '0'/],
    [['probe', '--model', 'm', '--data', 'd'], /give --out HEAD/],
    [['probe', '--model', 'm', '--data', 'd', '--out', 'h.json', '--holdout', '1'], /--holdout must be in \[0, 1\), got 1/],
    [['classify', '--model', 'm', '--head', 'h.json'], /give images to classify: IMAGE \.\.\. or --data DIR/],
    [['classify', '--model', 'm', '--head', 'h.json', '--data', 'd', 'x.png'], /give images to classify: IMAGE \.\.\. or --data DIR \(not both\)/],
    // node --test runs this file without an IPC channel to its parent
    [['agent', '--coordinator', 'http://127.0.0.1:1', '--data', 'x', '--train-slots', 'ipc'], /--train-slots ipc needs an IPC channel to the parent process/],
  ];
  for (const [argv, message] of cases) {
    it(`${argv.join(' ')}`, async () => {
      const { code, err } = await run(argv);
      assert.equal(code, 2, err.join('\n'));
      assert.match(err.join('\n'), message);
      assert.match(err.join('\n'), /\[FEDCLR_CLI_USAGE\]/);
    });
  }

  it('coordinator --config: the time budget is "minutes", not "budgetEndsAt"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-cli-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ budgetEndsAt: Date.now() + 60_000 }));
      const { code, err } = await run(['coordinator', '--config', file]);
      assert.equal(code, 2);
      assert.match(err.join('\n'), /give the time budget as "minutes" \(or --minutes\), not "budgetEndsAt"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unknown flag is a usage error (exit 2)', async () => {
    const { code, err } = await run(['simulate', '--clinets', '3']);
    assert.equal(code, 2);
    assert.match(err.join('\n'), /Unknown option '--clinets'/);
  });

  it('--help lists the options', async () => {
    for (const name of ['coordinator', 'agent', 'simulate', 'embed', 'search', 'probe', 'classify']) {
      const { code, out } = await run([name, '--help']);
      assert.equal(code, 0);
      assert.match(out.join('\n'), new RegExp(`^fedclr ${name}`));
    }
    // The recipe flags of fedclr train, for the whole federation.
    const simulate = (await run(['simulate', '--help'])).out.join('\n');
    for (const flag of ['--widths', '--crop-min', '--view-size', '--fedprox-mu', '--lr-schedule', '--train-slots']) assert.match(simulate, new RegExp(`^  ${flag} `, 'm'), flag);
    assert.match(simulate, /--lr-schedule cosine\|constant +the learning rate of each round \(default cosine/);
    const coordinator = (await run(['coordinator', '--help'])).out.join('\n');
    assert.match(coordinator, /--widths 32,64,512[\s\S]*--fedprox-mu MU[\s\S]*--lr-schedule cosine\|constant the learning rate of each round \(default cosine/);
    // The agent takes no recipe flag: its help names only its own limits.
    const agent = (await run(['agent', '--help'])).out.join('\n');
    for (const flag of ['--widths', '--crop-min', '--view-size', '--encoder', '--size', '--batch', '--weight-decay']) assert.doesNotMatch(agent, new RegExp(`^ +${flag} `, 'm'), flag);
    assert.match(agent, /The coordinator sends the training recipe with every round/);

  });
});

describe('default view sizes', () => {
  it('central (train): 16 px views of 28 px grayscale; federated (coordinator, simulate): 20 px; RGB: the full image', () => {
    assert.equal(defaultViewSize({ height: 28, channels: 1 }, 'central'), 16);
    assert.equal(defaultViewSize({ height: 28, channels: 1 }, 'federated'), 20);
    assert.equal(defaultViewSize({ height: 32, channels: 3 }, 'central'), 32);
    assert.equal(defaultViewSize({ height: 32, channels: 3 }, 'federated'), 32);
    assert.equal(defaultViewSize({ height: 6, channels: 1 }, 'central'), 4); // never below the 4 px minimum of --view-size
  });
});

describe('splitSimulation', () => {
  const labels = Uint8Array.from({ length: 600 }, (_, i) => i % 10);
  it('partitions the whole train split by default, with no holdout', () => {
    const spec = { dataset: 'fashion-mnist' as const, clients: 4, partition: { kind: 'dirichlet' as const, alpha: 0.5 }, seed: 3 };
    const a = splitSimulation(labels, spec);
    assert.deepEqual(a.holdout, []);
    assert.deepEqual(a.parts.flat().sort((x, y) => x - y), Array.from({ length: 600 }, (_, i) => i));
    // The partition does not depend on whether a holdout was asked for as 0 or left out.
    assert.deepEqual(splitSimulation(labels, { ...spec, holdout: 0 }), a);
  });
  it('carves a holdout, partitions the rest disjointly, and is a pure function of the spec', () => {
    const spec = { dataset: 'fashion-mnist' as const, clients: 4, partition: { kind: 'dirichlet' as const, alpha: 0.5 }, seed: 3, holdout: 100 };
    const a = splitSimulation(labels, spec);
    const b = splitSimulation(labels, spec);
    assert.deepEqual(a, b);
    assert.equal(a.holdout.length, 100);
    assert.equal(a.parts.length, 4);
    const seen = new Set(a.holdout);
    for (const p of a.parts) for (const i of p) {
      assert.ok(!seen.has(i), `index ${i} is in two places`);
      seen.add(i);
    }
    assert.equal(seen.size, 600);
    assert.notDeepEqual(splitSimulation(labels, { ...spec, seed: 4 }).holdout, a.holdout);
    assert.equal(splitSimulation(labels, { ...spec, holdout: 50 }).holdout.length, 50);
  });
  it('refuses a holdout that leaves too little to partition', () => {
    assert.throws(() => splitSimulation(labels, { clients: 2, partition: { kind: 'iid' }, seed: 0, holdout: 598 }), /holdout/);
    assert.throws(() => splitSimulation(labels, { clients: 2, partition: { kind: 'iid' }, seed: 0, holdout: 5 }), /holdout/);
  });
});

function waitFor(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got:\n${text}`)), timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}

describe('agent policy flags', () => {
  it('are saved in the state dir (0600) and still applied after a restart without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-cli-'));
    const runAgent = async (extra: string[]): Promise<string> => {
      const child = spawn(process.execPath, [
        BIN, 'agent', '--coordinator', 'http://127.0.0.1:1', '--trust-on-first-use', '--dataset', 'fashion-mnist', '--client', '0/2',
        '--limit', '64', '--holdout', '10', '--state', join(dir, 'a'), '--workers', '0', '--log-level', 'info', ...extra,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const text = await waitFor(child.stderr as NodeJS.ReadableStream, /"msg":"agent started"/, 30_000);
        return text;
      } finally {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    };
    try {
      const first = await runAgent(['--allow-plain', '--min-cohort', '7', '--min-noise-multiplier', '0.5']);
      assert.match(first, /trust on first use/);
      const file = join(dir, 'a', 'policy.json');
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, requireSecure: false, minCohort: 7, minNoiseMultiplier: 0.5, requireSampling: false });
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const second = await runAgent([]);
      assert.match(second, /"policy":\{"requireSecure":false,"minCohort":7,"minNoiseMultiplier":0.5,"requireSampling":false\}/);
      await runAgent(['--require-secure', '--min-cohort', '3', '--require-sampling']);
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, requireSecure: true, minCohort: 3, minNoiseMultiplier: 0.5, requireSampling: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('signals', () => {
  it('fedclr coordinator and fedclr agent exit cleanly (code 0) on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-cli-'));
    const started: ChildProcess[] = [];
    const start = (args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      let out = '';
      let err = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      return { child, stdout: () => out, stderr: () => err, exit: new Promise((r) => child.once('exit', (code) => r(code))) };
    };
    try {
      const coordinator = start(['coordinator', '--state', join(dir, 'c'), '--port', '0', '--aggregation', 'plain', '--open-enrolment', '--log-level', 'warn']);
      // The banner, then the coordinator's public key (printed at start): the agent pins it.
      const banner = await waitFor(coordinator.child.stderr as NodeJS.ReadableStream, /coordinator listening on (http:\/\/\S+) [\s\S]*coordinator public key ([0-9a-f]{64})/, 30_000);
      const url = /listening on (http:\/\/\S+) /.exec(banner)?.[1] as string;
      const key = /coordinator public key ([0-9a-f]{64})/.exec(banner)?.[1] as string;
      const agent = start([
        'agent', '--coordinator', url, '--coordinator-key', key, '--allow-plain', '--dataset', 'fashion-mnist', '--client', '0/2', '--limit', '64', '--holdout', '10',
        '--state', join(dir, 'a'), '--workers', '0', '--json', '--log-level', 'info',
      ]);
      await waitFor(agent.child.stderr as NodeJS.ReadableStream, /agent started/, 30_000);
      agent.child.kill('SIGTERM');
      assert.equal(await agent.exit, 0, agent.stderr());
      const summary = JSON.parse(agent.stdout().trim().split('\n').pop() as string) as { signal: string; agentId: string };
      assert.equal(summary.signal, 'SIGTERM');
      coordinator.child.kill('SIGTERM');
      assert.equal(await coordinator.exit, 0, coordinator.stderr());
      assert.match(coordinator.stdout(), /coordinator stopped \(signal\) after 0 completed rounds/);
    } finally {
      for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
