// node scripts/dist/emoji-folder.js --from DIR --out DIR [--test-fraction 0.2] [--seed 0]
// Lays out the Noto emoji images of the npm package emoji-datasource-google (images Apache-2.0)
// as two labeled image folders, <out>/train/<category>/ and <out>/test/<category>/: a real RGB
// image set with 9 classes (its Unicode categories, "Component" left out: 5 swatches). Only base
// emoji, no skin-tone variants (near duplicates that would leak across the split). The split is
// seeded and stratified; the files are copied as they are (64 px RGBA PNG).
//   npm install --prefix /tmp/emoji emoji-datasource-google@16.0.0
//   node scripts/dist/emoji-folder.js --from /tmp/emoji/node_modules/emoji-datasource-google --out /tmp/emoji-folders
import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRng } from '@fedclr/data';

interface EmojiEntry {
  readonly image: string;
  readonly category: string;
  readonly has_img_google: boolean;
}

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    out: { type: 'string' },
    'test-fraction': { type: 'string', default: '0.2' },
    seed: { type: 'string', default: '0' },
  },
});
if (values.from === undefined || values.out === undefined) throw new Error('give --from <emoji-datasource-google folder> --out DIR');
const fraction = Number(values['test-fraction']);
if (!(fraction > 0 && fraction < 1)) throw new Error(`--test-fraction must be in (0, 1), got ${values['test-fraction']}`);
const out = values.out;
if ((await readdir(out).catch(() => [])).length > 0) throw new Error(`--out ${out} is not empty`);

const entries = JSON.parse(await readFile(join(values.from, 'emoji.json'), 'utf8')) as EmojiEntry[];
const byClass = new Map<string, string[]>();
for (const e of entries) {
  if (!e.has_img_google || e.category === 'Component') continue;
  const name = e.category.toLowerCase().replace(/[^a-z]+/g, '-');
  byClass.set(name, [...(byClass.get(name) ?? []), e.image]);
}
const rng = createRng(`emoji-folder:${values.seed}`);
const counts: Record<string, { train: number; test: number }> = {};
for (const [name, images] of [...byClass].sort(([a], [b]) => (a < b ? -1 : 1))) {
  const order = rng.shuffle([...images].sort());
  const testCount = Math.max(1, Math.round(order.length * fraction));
  for (const [split, files] of [['test', order.slice(0, testCount)], ['train', order.slice(testCount)]] as const) {
    const dir = join(out, split, name);
    await mkdir(dir, { recursive: true });
    for (const file of files) await copyFile(join(values.from, 'img', 'google', '64', file), join(dir, file));
  }
  counts[name] = { train: order.length - testCount, test: testCount };
}
console.log(JSON.stringify({ out, classes: counts }));
