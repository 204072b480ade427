// The pre-handshake flood, small (50 sockets instead of the benchmark's 1000): a real
// `fedclr coordinator` process on loopback, every flood socket sending a 20 MB frame before
// hello, one real enrolled agent that must still complete a round. Run against the deployed
// limits (every flood socket cut mid-frame, RSS bounded) and against a weakened coordinator
// (pre-handshake cap raised to 64 MiB), where the same check sees every frame delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/dist/flood-handshake.js', import.meta.url));

interface FloodReport {
  outcomes: { refused: number; cut: number; delivered: number; error: number; timeout: number };
  maxBytesWrittenByAFloodSocket: number;
  coordinatorRssMb: { baseline: number; peakDuringFlood: number };
  agentRoundCompleted: boolean;
}

function flood(args: readonly string[]): Promise<{ code: number; report: FloodReport }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SCRIPT, '--seconds', '20', ...args], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), report: JSON.parse(line) as FloodReport });
      } catch {
        reject(new Error(`flood-handshake printed no report (${String(err)}): ${stdout}`));
      }
    });
  });
}

for (const enrolment of ['allow-list', 'open']) {
  test(`50 sockets x 20 MB before hello (${enrolment}): every one is cut or refused, RSS stays bounded, the real agent completes its round`, async () => {
    const { code, report } = await flood(['--sockets', '50', '--distributed', '--enrolment', enrolment]);
    assert.equal(report.agentRoundCompleted, true);
    assert.equal(report.outcomes.delivered, 0, 'no 20 MB frame may be read from an unauthenticated socket');
    assert.equal(report.outcomes.cut + report.outcomes.refused, 50);
    // What a flood socket got into the coordinator's kernel buffers and its 64 KiB window, far below 20 MB.
    assert.ok(report.maxBytesWrittenByAFloodSocket < 10e6, `${report.maxBytesWrittenByAFloodSocket} bytes written`);
    assert.ok(report.coordinatorRssMb.peakDuringFlood < 300, `peak RSS ${report.coordinatorRssMb.peakDuringFlood} MB`);
    assert.ok(report.coordinatorRssMb.peakDuringFlood - report.coordinatorRssMb.baseline < 100, JSON.stringify(report.coordinatorRssMb));
    assert.equal(code, 0);
  });
}

test('weakened (pre-handshake cap 64 MiB): the same check sees every 20 MB frame delivered and the RSS grow with them', async () => {
  const { report } = await flood(['--sockets', '5', '--weaken']);
  assert.equal(report.outcomes.delivered, 5);
  assert.ok(report.coordinatorRssMb.peakDuringFlood - report.coordinatorRssMb.baseline > 50, JSON.stringify(report.coordinatorRssMb));
});
