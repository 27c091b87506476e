// Not a test: measures Volunteer.open() with the PIN and with the duress PIN on real files (default
// argon2id cost), with nothing queued and with 10 acta photos queued, so the figures in
// protocol/spec/duress-and-wipe.md §2.4 can be re-measured. Timing is never asserted in tests.
//
//   node client-sdk/dist/volunteer/measure-unlock.js [runs=7] [photos=10] [photoBytes]
//
// Without photoBytes the photos are the real acta scans (testing/acta-photos.ts); with it,
// synthetic JPEG-structured photos of that size (e.g. 2000000: about 31 chunk files each).
//
// A template device is enrolled once against a real relay child process (and its `enrolled`
// report synced); every measured open runs on a fresh copy of it (so each duress open really
// erases), flushed to disk with sync(1) before the open, alternating PIN and duress PIN. Prints
// min / median / max in ms of open() alone.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initSodium } from "@testigo/protocol";
import { NodeStorage } from "../storage/node-storage.js";
import { actaPhotos, syntheticActa } from "../testing/acta-photos.js";
import { startRelay } from "../testing/relay-process.js";
import { enroll } from "./enroll.js";
import { loadOutbox } from "./outbox.js";
import { testCoordinator } from "./test-coordinator.js";
import { Volunteer } from "./volunteer.js";

const PIN = "246810";
const DURESS = "135799";

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return `min ${sorted[0]?.toFixed(0)}  median ${at(0.5).toFixed(0)}  max ${sorted.at(-1)?.toFixed(0)}  (n=${sorted.length})`;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 7);
  const photoCount = Number(process.argv[3] ?? 10);
  const photoBytes = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
  await initSodium();
  const relay = await startRelay();
  const work = mkdtempSync(join(tmpdir(), "testigo-measure-unlock-"));
  try {
    const coordinator = await testCoordinator(relay.url, relay.token);
    const templates: { label: string; dir: string }[] = [];
    for (const queued of [0, photoCount]) {
      const dir = join(work, `template-${queued}`);
      await enroll({
        storage: await NodeStorage.open(dir),
        inviteCode: await coordinator.invite(),
        pin: PIN,
        duressPin: DURESS,
        now: Date.now,
      });
      const real = await Volunteer.open(await NodeStorage.open(dir), PIN);
      await real.sync({ budgetMs: 5_000, sleep: async () => undefined, random: () => 0 });
      const photos = (
        photoBytes === undefined ? actaPhotos(queued) : Array.from({ length: queued }, () => syntheticActa(photoBytes))
      ).map((photo) => photo.bytes);
      for (let i = 0; i < photos.length; i += 5) await real.acta({ table: "7", photos: photos.slice(i, i + 5) });
      const items = await loadOutbox(real.store);
      const chunks = items.reduce((sum, item) => sum + (item.type === "photo" ? item.chunkCount : 0), 0);
      templates.push({ label: `${queued} photos queued (${chunks} chunk files)`, dir });
    }
    await coordinator.fetch();
    for (const { label, dir } of templates) {
      const times: Record<string, number[]> = { pin: [], duress: [] };
      for (let run = 0; run < runs; run++) {
        for (const [which, pin] of [
          ["pin", PIN],
          ["duress", DURESS],
        ] as const) {
          const copy = `${dir}-run-${run}-${which}`;
          cpSync(dir, copy, { recursive: true });
          // The copy's data on disk first, as a phone's queued photos are: not in the measured open().
          execFileSync("sync");
          const storage = await NodeStorage.open(copy);
          const start = performance.now();
          await Volunteer.open(storage, pin);
          times[which]?.push(performance.now() - start);
          rmSync(copy, { recursive: true, force: true });
        }
      }
      console.log(`${label}`);
      console.log(`  open() with the PIN:        ${summary(times.pin ?? [])}`);
      console.log(`  open() with the duress PIN: ${summary(times.duress ?? [])}`);
    }
  } finally {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
