// TLS and server-bound flags of `fedclr coordinator` and `fedclr agent`: bad values fail before
// anything starts, with a message naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/main.js';

async function run(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  let code: number;
  try {
    code = await main(argv, (l) => lines.push(l), (l) => lines.push(l));
  } catch (err) {
    code = -1;
    lines.push(String(err));
  }
  return { code, text: lines.join('\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'fedclr-tls-flags-'));
const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'hello');
const key = 'ab'.repeat(32);

const cases: [string[], RegExp][] = [
  [['coordinator', '--tls-cert', notPem], /give --tls-cert FILE and --tls-key FILE together/],
  [['coordinator', '--tls-key', notPem], /give --tls-cert FILE and --tls-key FILE together/],
  [['coordinator', '--tls-cert', '/nonexistent/c.pem', '--tls-key', notPem], /cannot read --tls-cert \/nonexistent\/c\.pem/],
  [['coordinator', '--max-update-norm', '0'], /--max-update-norm must be a number > 0, got '0'/],
  [['agent', '--coordinator', 'http://10.1.2.3:8080', '--data', 'x', '--coordinator-key', key], /FEDCLR_AGENT_INSECURE_URL|Refusing http:\/\/10\.1\.2\.3:8080.*--insecure/],
  [['agent', '--coordinator', 'https://127.0.0.1:1', '--data', 'x', '--coordinator-key', key, '--ca', '/nonexistent/ca.crt'], /cannot read --ca \/nonexistent\/ca\.crt/],
  [['agent', '--coordinator', 'https://127.0.0.1:1', '--data', 'x', '--coordinator-key', key, '--ca', notPem], /--ca .*not\.pem holds no PEM certificate/],
];

for (const [argv, expected] of cases) {
  test(`fedclr ${argv.join(' ')}`, async () => {
    const { code, text } = await run(argv);
    assert.notEqual(code, 0);
    assert.match(text, expected);
  });
}
