// Top self-time functions of a V8 .cpuprofile (node --cpu-prof), and the share of samples under
// a few named functions (inclusive):  node bench/dist/cpuprofile-top.js FILE [TOP] [NAME...]
import { readFileSync } from "node:fs";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

const [file, topText = "30", ...names] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: cpuprofile-top FILE [TOP] [NAME...]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const label = (frame: CallFrame) =>
  `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*\/(node_modules|work\/main)\//, "")}:${frame.lineNumber + 1}`;

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let idle = 0;
for (const id of profile.samples) {
  const node = byId.get(id);
  if (node === undefined) continue;
  if (node.callFrame.functionName === "(idle)") idle++;
  const key = label(node.callFrame);
  self.set(key, (self.get(key) ?? 0) + 1);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = byId.get(at)?.callFrame.functionName ?? "";
    if (names.includes(name) && !seen.has(name)) {
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  }
}
const total = profile.samples.length;
const pct = (n: number) => `${((100 * n) / total).toFixed(1)}%`;
process.stdout.write(`${total} samples, idle ${pct(idle)}\n`);
for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topText))) {
  process.stdout.write(`${pct(n).padStart(6)}  ${key}\n`);
}
for (const name of names) process.stdout.write(`inclusive ${name}: ${pct(inclusive.get(name) ?? 0)}\n`);
