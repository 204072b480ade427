// fedclr classify: encoder + probe head on images: the most probable class of each, with its
// probability.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EvalHeadFileError, linearProbeProbabilities, parseProbeHead, probeHeadModel, type ProbeHead } from '@fedclr/contrastive';
import { initBackend } from '@fedclr/tensor';
import { intOption } from '../common.js';
import { ENCODER_OPTIONS, checkSameEncoder, embedImages, loadEncoder, readImageFiles, readImageSet } from '../encoder.js';
import { UsageError } from '../errors.js';

export const classifyHelp = `fedclr classify --model DIR --head HEAD.json (IMAGE ... | --data DIR) [options]
  --model DIR                 the encoder the head was fitted on (checked by fingerprint)
  --head HEAD                 a head file written by fedclr probe
  IMAGE ...                   PNG/JPEG files, or --data DIR: every image under DIR
  --top 1                     classes listed per image, most probable first
  --json                      one JSON object: {results: [{path, label, probability, top}]}
  --workers N`;

async function readHead(path: string): Promise<ProbeHead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new EvalHeadFileError(path, `cannot read it (${(err as Error).message})`);
  }
  return parseProbeHead(text, path);
}

export async function classifyCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...ENCODER_OPTIONS,
      head: { type: 'string' },
      data: { type: 'string' },
      top: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.model === undefined || values.head === undefined) throw new UsageError('give --model DIR and --head HEAD');
  if ((positionals.length === 0) === (values.data === undefined)) throw new UsageError('give images to classify: IMAGE ... or --data DIR (not both)');
  await initBackend();
  const encoder = await loadEncoder(values.model);
  const head = await readHead(values.head);
  checkSameEncoder(encoder, head.model, values.head);
  const C = head.classes.length;
  const top = Math.min(intOption(values, 'top', 1), C);
  let paths: readonly string[];
  let images: Uint8Array;
  if (values.data !== undefined) {
    const set = await readImageSet(encoder, { data: values.data }, false, log);
    paths = set.paths.map((p) => join(values.data as string, p));
    images = set.images;
  } else {
    paths = positionals;
    images = await readImageFiles(encoder, positionals);
  }
  const features = await embedImages(encoder, images, paths.length, values);
  const probabilities = linearProbeProbabilities(probeHeadModel(head), features, paths.length);
  const results = paths.map((path, i) => {
    const row = Array.from(probabilities.subarray(i * C, (i + 1) * C), (p, c) => ({ label: head.classes[c] as string, probability: Number(p.toFixed(6)) }));
    const ranked = row.sort((a, b) => b.probability - a.probability).slice(0, top);
    const best = ranked[0] as { label: string; probability: number };
    return { path, label: best.label, probability: best.probability, top: ranked };
  });
  if (values.json) out(JSON.stringify({ head: values.head, results }));
  else for (const r of results) out(`${r.path}\t${r.top.map((t) => `${t.label}\t${t.probability.toFixed(4)}`).join('\t')}`);
  return 0;
}
