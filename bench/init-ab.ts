// Paired INIT launches (spawn → first event/next at the Extensions API stand-in) of unpacked layer
// directories, in rotated order each round, for comparing a change against the layer and a bare extension:
//   node scripts/layer.mjs --out /tmp/a x86_64 && mkdir /tmp/a/x && cd /tmp/a/x && unzip -q ../pscache-x86_64.zip
//   node --import tsx bench/init-ab.ts ROUNDS BARE_DIR DIR...
// prints each DIR's median and its ratios to the first DIR (ratio of medians, median of the paired ratios),
// and, as the layer's target is checked (the median of 9 paired launches), the spread of that median over
// every run of 9 consecutive rounds: its lowest and highest, and how many of them exceed 1.05.
import { launchOnce } from './lambda.ts';
import { median } from './lib.ts';

const WINDOW = 9;
const TARGET = 1.05;
const [roundsArg, ...dirs] = process.argv.slice(2);
const rounds = Number(roundsArg);
const t: number[][] = dirs.map(() => []);
// Two warm-up rounds, then ROUNDS kept; each round starts one directory later than the last.
for (let r = -2; r < rounds; r++) {
  for (let k = 0; k < dirs.length; k++) {
    const i = (k + r + 2) % dirs.length;
    const v = (await launchOnce(dirs[i]!, { ping: false })).next;
    if (r >= 0) t[i]!.push(v);
  }
}
for (let i = 0; i < dirs.length; i++) {
  const ratios = t[i]!.map((v, j) => v / t[0]![j]!);
  let line = `${dirs[i]}: median ${median(t[i]!).toFixed(2)} ms; ratio of medians ${(median(t[i]!) / median(t[0]!)).toFixed(3)}; median paired ratio ${median(ratios).toFixed(3)}`;
  if (i > 0 && ratios.length >= WINDOW) {
    const windows = ratios.slice(WINDOW - 1).map((_, s) => median(ratios.slice(s, s + WINDOW)));
    const over = windows.filter((m) => m > TARGET).length;
    line += `; ${WINDOW}-round medians ${Math.min(...windows).toFixed(3)}–${Math.max(...windows).toFixed(3)}, ${over} of ${windows.length} over ${TARGET}`;
  }
  console.log(line);
}
