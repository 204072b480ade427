// TLS end to end on loopback: the coordinator serves https + wss with a certificate made at test
// time (openssl); a real agent verifies it against a private CA, completes a round, and refuses
// a certificate from another CA (a man in the middle) or for another host, with an error that
// names the host and the CA.
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { io as ioClient } from 'socket.io-client';
import { createFakeTrainer, isLoopbackHost, startAgent, type AgentHandle } from '@fedclr/agent';
import { resolveConfig } from '../src/config.js';
import { makeCa, makeServerCert } from './certs.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const ca = makeCa();
const server = makeServerCert(ca, ['DNS:localhost', 'IP:127.0.0.1']);

async function tlsCoordinator(dir: string, cert = server): Promise<Awaited<ReturnType<typeof startTestCoordinator>>['coordinator']> {
  const { coordinator } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 1,
    minCohort: 1,
    maxCohort: 1,
    deadlineMs: 10_000,
    tls: { cert: cert.cert, key: cert.key },
  });
  return coordinator;
}

function agentFor(dir: string, url: string, key: string, extra: { ca?: string; caPath?: string } = {}): Promise<AgentHandle> {
  return startAgent({
    coordinatorUrl: url,
    stateDir: join(dir, 'agent'),
    agentId: 'agent-tls',
    trainer: createFakeTrainer({ seed: 1, exampleCount: 5 }),
    reconnect: { initialDelayMs: 50, maxDelayMs: 100, maxAttempts: 3 },
    ...trust(key),
    ...extra,
  });
}

test('https coordinator: an agent that trusts the private CA joins over wss and completes a round', async () => {
  const dir = tempDir();
  const coordinator = await tlsCoordinator(dir);
  assert.match(coordinator.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const agent = await agentFor(dir, coordinator.url, coordinator.publicKey, { ca: ca.cert, caPath: ca.certPath });
  try {
    assert.equal(await withTimeout(coordinator.finished, 20_000, 'the round over TLS'), 1);
    const exit = await withTimeout(agent.done, 10_000, 'the agent to stop');
    assert.equal(exit.reason, 'completed');
    // The HTTP API is on the same https server.
    const res = await fetch(`${coordinator.url}/api/status`).catch((err: unknown) => err as Error);
    assert.ok(res instanceof Error, 'fetch without the CA must fail certificate verification');
  } finally {
    await agent.close();
    await coordinator.close();
  }
});

test('over TLS too, a connection that sends 1 MiB before hello is cut at the (decrypted) transport', async () => {
  const dir = tempDir();
  const coordinator = await tlsCoordinator(dir);
  try {
    const s = ioClient(coordinator.url, { transports: ['websocket'], reconnection: false, forceNew: true, ca: ca.cert });
    const outcome = await withTimeout(
      new Promise<string>((resolve) => {
        s.once('connect', () => s.emit('message', { type: 'hello', padding: Buffer.alloc(1024 * 1024, 7) }));
        s.once('message', () => resolve('answered'));
        s.once('disconnect', () => resolve('cut'));
        s.once('connect_error', (err) => resolve(`connect_error: ${err.message}`));
      }),
      10_000,
      'the oversize hello over TLS',
    );
    s.close();
    assert.equal(outcome, 'cut');
    assert.equal(coordinator.metrics.handshakesRejected.get({ reason: 'too-large' }), 1);
  } finally {
    await coordinator.close();
  }
});

test('an agent refuses a certificate from another CA (man in the middle) with FEDCLR_AGENT_TLS_VERIFY_FAILED naming host and CA', async () => {
  const dir = tempDir();
  const coordinator = await tlsCoordinator(dir);
  const otherCa = makeCa('some other CA');
  const agent = await agentFor(dir, coordinator.url, coordinator.publicKey, { ca: otherCa.cert, caPath: otherCa.certPath });
  try {
    const exit = await withTimeout(agent.done, 10_000, 'the agent to give up');
    assert.equal(exit.reason, 'rejected');
    assert.equal((exit.error as { code?: string }).code, 'FEDCLR_AGENT_TLS_VERIFY_FAILED');
    assert.match(exit.message ?? '', /host '127\.0\.0\.1'/);
    assert.ok((exit.message ?? '').includes(otherCa.certPath), exit.message);
    assert.match(exit.message ?? '', /--ca FILE/);
    assert.equal(coordinator.status().readyAgents, 0);
  } finally {
    await agent.close();
    await coordinator.close();
  }
});

test('without --ca the system store does not trust a private CA: refused, naming the system CA store', async () => {
  const dir = tempDir();
  const coordinator = await tlsCoordinator(dir);
  const agent = await agentFor(dir, coordinator.url, coordinator.publicKey);
  try {
    const exit = await withTimeout(agent.done, 10_000, 'the agent to give up');
    assert.equal((exit.error as { code?: string }).code, 'FEDCLR_AGENT_TLS_VERIFY_FAILED');
    assert.match(exit.message ?? '', /the system CA store/);
  } finally {
    await agent.close();
    await coordinator.close();
  }
});

test('a certificate for another host name is refused (ERR_TLS_CERT_ALTNAME_INVALID), naming the expected host', async () => {
  const dir = tempDir();
  const coordinator = await tlsCoordinator(dir, makeServerCert(ca, ['DNS:coord.example'], 'other-host'));
  const agent = await agentFor(dir, coordinator.url, coordinator.publicKey, { ca: ca.cert, caPath: ca.certPath });
  try {
    const exit = await withTimeout(agent.done, 10_000, 'the agent to give up');
    assert.equal((exit.error as { code?: string }).code, 'FEDCLR_AGENT_TLS_VERIFY_FAILED');
    assert.match(exit.message ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.match(exit.message ?? '', /host '127\.0\.0\.1'/);
  } finally {
    await agent.close();
    await coordinator.close();
  }
});

test('the agent refuses http:// to a non-loopback host unless insecure, and the error names --insecure', async () => {
  const dir = tempDir();
  const key = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
  await assert.rejects(agentFor(dir, 'http://10.1.2.3:8080', key), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FEDCLR_AGENT_INSECURE_URL');
    assert.match(err.message, /--insecure/);
    assert.match(err.message, /10\.1\.2\.3/);
    return true;
  });
  await assert.rejects(agentFor(dir, 'ws://coord.example:8080', key), /FEDCLR_AGENT_INSECURE_URL|non-loopback/);
  const insecure = await startAgent({
    coordinatorUrl: 'http://10.1.2.3:9',
    stateDir: join(dir, 'agent-insecure'),
    trainer: createFakeTrainer({ seed: 1 }),
    insecure: true,
    connectTimeoutMs: 100,
    ...trust(key),
  });
  await insecure.close();
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '::1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['10.0.0.1', 'example.com', '128.0.0.1', 'localhost.example.com']) assert.ok(!isLoopbackHost(h), h);
});

test('config: a TLS key that does not belong to the certificate, or non-PEM text, is FEDCLR_COORD_CONFIG_INVALID', () => {
  const other = makeServerCert(ca, ['DNS:localhost'], 'mismatch');
  assert.throws(() => resolveConfig({ stateDir: 'x', tls: { cert: server.cert, key: other.key } }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FEDCLR_COORD_CONFIG_INVALID');
    assert.match(err.message, /'tls'/);
    return true;
  });
  assert.throws(() => resolveConfig({ stateDir: 'x', tls: { cert: 'not a certificate', key: server.key } }), /tls\.cert/);
});
