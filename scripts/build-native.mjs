#!/usr/bin/env node
// Builds @fedclr/tensor's native kernel addon (packages/tensor/native) with npm's own node-gyp,
// against this Node's installed headers: no download, so it works offline. Needs a C compiler,
// make and libblis-serial-dev (scripts/setup.sh installs them).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const prefix = dirname(dirname(process.execPath));
const nodeGyp = [
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((path) => existsSync(path));
if (nodeGyp === undefined) {
  console.error(`build-native: npm's node-gyp not found under ${prefix}; install npm alongside node`);
  process.exit(1);
}
// Headers next to the node binary (Debian's nodejs, official tarballs): node-gyp would otherwise download them.
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const args = [nodeGyp, 'rebuild', '--directory', join(root, 'packages', 'tensor', 'native'), ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.error('build-native: the native kernels did not build (are gcc, make and libblis-serial-dev installed?). Training still runs on the wasm kernels, at about half the speed.');
  process.exit(result.status ?? 1);
}
