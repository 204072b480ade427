// @fedclr/protocol: the wire messages between agent and coordinator.
export * from './errors.js';
export * from './limits.js';
export * from './version.js';
export * from './schemas.js';
export * from './messages.js';
export * from './frame.js';
export * from './handshake.js';
export * from './rounds.js';
export * from './signing.js';
