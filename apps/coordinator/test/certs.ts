// Test certificates, made at test time with the openssl command line (node:crypto cannot make
// X.509 certificates; scripts/setup.sh installs openssl): a private CA and server certificates
// it signs, with the subjectAltNames a test asks for.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM of the CA certificate. */
  readonly cert: string;
}

export interface TestServerCert {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh CA (EC P-256, valid one day) in its own temp dir. */
export function makeCa(name = 'fedclr test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-certs-'));
  openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { dir, certPath: join(dir, 'ca.crt'), keyPath: join(dir, 'ca.key'), cert: readFileSync(join(dir, 'ca.crt'), 'utf8') };
}

/** A server certificate signed by `ca` for `altNames` (e.g. ['DNS:localhost', 'IP:127.0.0.1']). */
export function makeServerCert(ca: TestCa, altNames: readonly string[], name = 'server'): TestServerCert {
  const dir = ca.dir;
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=fedclr coordinator'], dir);
  writeFileSync(
    join(dir, `${name}.ext`),
    `subjectAltName=${altNames.join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.crt`, '-extfile', `${name}.ext`], dir);
  return {
    certPath: join(dir, `${name}.crt`),
    keyPath: join(dir, `${name}.key`),
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}
