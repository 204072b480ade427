// Progress for long CLI work: a bar with ETA on a terminal, JSON lines otherwise (both on stderr,
// so stdout carries only results).
export interface ProgressSink {
  update(fraction: number, fields: Record<string, number | string>): void;
  done(): void;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h > 0 ? `${h}:` : ''}${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr, tty = stream.isTTY === true): ProgressSink {
  const started = Date.now();
  let lastJson = 0;
  return {
    update(fraction, fields) {
      const elapsed = Date.now() - started;
      const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : Infinity;
      if (tty) {
        const width = 28;
        const filled = Math.round(Math.min(1, fraction) * width);
        const extra = Object.entries(fields)
          .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : v}`)
          .join('  ');
        stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% eta ${duration(eta)}  ${extra}\x1b[K`);
      } else if (Date.now() - lastJson >= 1000 || fraction >= 1) {
        lastJson = Date.now();
        stream.write(`${JSON.stringify({ progress: label, fraction: Math.round(fraction * 1e4) / 1e4, elapsedMs: elapsed, etaMs: Number.isFinite(eta) ? Math.round(eta) : null, ...fields })}\n`);
      }
    },
    done() {
      if (tty) stream.write('\n');
    },
  };
}
