// The full loop (issue 4), on both stores, driven only through the `testigo` command against a
// real relay process: two coordinator devices (init; join + add-device + join --bundle), 20
// invites, three volunteers that each send status reports and actas (real scans when present,
// synthetic JPEGs with EXIF markers always), and both coordinator devices fetching every report
// and byte-identical photo exactly once, in order per volunteer. Then the relay is "seized": its
// data folder, its Redis files and its complete logs are scanned for every secret (DESIGN §3.1,
// §3.7), and so are the devices' folders.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { decodeInvite, initSodium, inviteRedeemToken } from "@testigo/protocol";
import { type RedisProcess, startRedis } from "@testigo/server/testing";
import {
  type CoordinatorDevice,
  enroll,
  fetchAll,
  initCoordinator,
  invite,
  joinCoordinator,
  photoFile,
  type ReportLine,
  readReports,
  type SentPhoto,
  sendActa,
  sendStatus,
  sha256Hex,
  type VolunteerDevice,
} from "./helpers/campaign.js";
import { testigoOk } from "./helpers/cli.js";
import { realActas, syntheticPhoto } from "./helpers/photos.js";
import { type LoggedRelay, startLoggedRelay } from "./helpers/relay.js";
import { binaryNeedle, describeFindings, filesUnder, type Needle, scanFiles, textNeedle } from "./helpers/scan.js";

const run = promisify(execFile);

const VOLUNTEERS = 3;
const INVITES = 20;
const MARKER = /MARKER-[0-9a-f]{16}/g;
/** An IPv4 address, or an IPv6 address written with at least two colons (incl. ::1, ::ffff:a.b.c.d). */
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}\b/;
const IPV6 = /(?:\b[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}|::ffff:|(?<![\w:])::1\b/;

interface Loop {
  readonly coordinators: CoordinatorDevice[];
  readonly volunteers: VolunteerDevice[];
  readonly invites: string[];
  readonly outs: string[];
}

for (const store of ["embedded", "redis"] as const) {
  describe(`full loop through the testigo command (${store} store)`, () => {
    let work: string;
    let redis: RedisProcess | undefined;
    let relay: LoggedRelay;
    let loop: Loop | undefined;

    before(async () => {
      await initSodium();
      work = mkdtempSync(join(tmpdir(), `testigo-e2e-loop-${store}-`));
      if (store === "redis") redis = await startRedis({ appendonly: true, appendfsync: "always" });
      relay = await startLoggedRelay(redis === undefined ? {} : { args: ["--redis", redis.url] });
    });
    after(async () => {
      await relay?.remove();
      await redis?.stop();
      if (work !== undefined) rmSync(work, { recursive: true, force: true });
    });

    const ran = (): Loop => {
      if (loop === undefined) throw new Error("the full loop did not run (see the first test's failure)");
      return loop;
    };

    it("delivers every report and byte-identical photo exactly once, in order, to both coordinator devices", async () => {
      const first = await initCoordinator(work, "coord-1", relay.url, relay.token);
      // The second device joins before any volunteer enrolls: volunteers seal to the roster they fetch.
      const second = await joinCoordinator(work, "coord-2", relay.url, first);
      const codes = await invite(first, INVITES);
      assert.equal(codes.length, INVITES);
      assert.equal(new Set(codes).size, INVITES);

      const real = realActas();
      const photosDir = join(work, "camera");
      const volunteers: VolunteerDevice[] = [];
      for (let i = 0; i < VOLUNTEERS; i++) {
        volunteers.push(await enroll(work, `phone-${i}`, codes[i] as string));
      }
      // Each volunteer: status, acta (a real scan + a synthetic photo with an EXIF marker),
      // status, acta (one photo), status.
      const photo = (name: string): SentPhoto => {
        const source = real[Math.floor(Math.random() * real.length)];
        if (source === undefined) {
          const synthetic = syntheticPhoto(200_000);
          return photoFile(photosDir, `${name}.jpg`, synthetic.bytes, synthetic.exifMarker);
        }
        return photoFile(photosDir, `${name}-${source.name}`, source.bytes);
      };
      for (const [i, volunteer] of volunteers.entries()) {
        const synthetic = syntheticPhoto(150_000 + i * 10_000);
        assert.equal((await sendStatus(volunteer)).stdout, "sent\n");
        await sendActa(volunteer, [
          photo(`v${i}-a1`),
          photoFile(photosDir, `v${i}-exif.jpg`, synthetic.bytes, synthetic.exifMarker),
        ]);
        await sendStatus(volunteer);
        await sendActa(volunteer, [photo(`v${i}-a2`)]);
        await sendStatus(volunteer);
      }

      const devices = [first, second];
      const outs = devices.map((device) => join(work, `out-${device.name}`));
      for (const [d, device] of devices.entries()) {
        const summaries = await fetchAll(device, outs[d] as string);
        const last = summaries.at(-1);
        assert.equal(last?.waitingForPhotos, 0, `${device.name}: no acta still waiting for its photos`);
        assert.equal(
          summaries.reduce((sum, s) => sum + s.quarantined, 0),
          0,
          `${device.name}: nothing quarantined`,
        );
        // A second fetch writes nothing new: everything was acked.
        const again = await fetchAll(device, outs[d] as string, 1);
        assert.equal(again[0]?.written, 0, `${device.name}: a second fetch writes nothing`);
        checkDelivery(device.name, outs[d] as string, volunteers);
      }
      loop = { coordinators: devices, volunteers, invites: codes, outs };
    });

    it("lists the three pseudonyms in `coordinator volunteers --json` on both devices", async () => {
      const { coordinators, volunteers } = ran();
      for (const device of coordinators) {
        const listed = await testigoOk([
          "coordinator",
          "volunteers",
          "--dir",
          device.dir,
          "--passphrase-file",
          device.passphraseFile,
          "--json",
        ]);
        const views = JSON.parse(listed.stdout) as { pseudonym: string; known: boolean; revoked: boolean | null }[];
        assert.deepEqual(
          views.map((v) => v.pseudonym).sort(),
          volunteers.map((v) => v.pseudonym).sort(),
          `${device.name} lists exactly the enrolled volunteers`,
        );
        for (const view of views) assert.equal(view.known, true);
      }
    });

    it("leaves no marker, EXIF text, invite secret, PIN, passphrase or photo bytes on the seized relay or the devices", async () => {
      const { coordinators, volunteers, invites, outs } = ran();
      const markers = volunteers.flatMap((v) =>
        v.sent.flatMap((report) => [...`${report.table} ${report.text}`.matchAll(MARKER)].map((m) => m[0])),
      );
      assert.equal(markers.length, volunteers.length * 5 * 2);
      const photos = volunteers.flatMap((v) => v.sent.flatMap((report) => report.photos));
      const markerNeedles = markers.map((m, i) => textNeedle(`report marker #${i}`, m));
      const exifNeedles = photos.flatMap((p, i) =>
        p.exifMarker === undefined ? [] : [textNeedle(`EXIF marker of photo #${i}`, p.exifMarker)],
      );
      assert.ok(exifNeedles.length >= volunteers.length);
      const photoNeedles = photos.flatMap((p, i) => photoWindows(`photo #${i}`, p.bytes));
      const inviteNeedles = invites.flatMap((code, i) => {
        const secret = decodeInvite(code).secret;
        return [
          textNeedle(`invite code #${i}`, code),
          binaryNeedle(`invite secret #${i}`, secret),
          binaryNeedle(`invite redeem token #${i}`, inviteRedeemToken(secret)),
        ];
      });
      const pinNeedles = volunteers.map((v) => textNeedle(`PIN of ${v.name}`, v.pin));
      const passphraseNeedles = coordinators.map((c) => textNeedle(`passphrase of ${c.name}`, c.passphrase));
      const pseudonymNeedles = volunteers.map((v, i) => textNeedle(`pseudonym of volunteer #${i}`, v.pseudonym));
      const relaySecrets = [
        ...markerNeedles,
        ...exifNeedles,
        ...photoNeedles,
        ...inviteNeedles,
        ...pinNeedles,
        ...passphraseNeedles,
      ];

      // Positive control: the same needles ARE found where the plaintext legitimately is (the
      // coordinators' output), so a clean scan below means absent, not mis-encoded.
      const controls = [...markerNeedles, ...exifNeedles, ...photoNeedles];
      for (const out of outs) {
        const found = new Set(scanFiles(filesUnder(out), controls).map((f) => f.label));
        for (const needle of controls) {
          assert.ok(found.has(needle.label), `control: ${needle.label} is in ${out}`);
        }
      }

      // The relay while it runs (the WAL and shared-memory files exist now), then after it stopped.
      const relayFiles = (): string[] => [
        ...filesUnder(relay.dataDir),
        ...(redis === undefined ? [] : filesUnder(redis.dir)),
      ];
      if (redis !== undefined) await run("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "SAVE"]);
      const live = relayFiles();
      // The relay held the photos' ciphertext at some point (the database, its WAL, the AOF):
      // the scan reads real data, not empty files.
      const written = live.reduce((sum, f) => sum + statSync(f).size, 0);
      const photoBytes = photos.reduce((sum, p) => sum + p.bytes.length, 0);
      assert.ok(written >= photoBytes, `the relay's files (${written} bytes) held the photos (${photoBytes} bytes)`);
      assertClean("relay files (running)", scanFiles(live, relaySecrets));
      await relay.stop();
      if (redis !== undefined) await run("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "SAVE"]);
      const stopped = relayFiles();
      if (redis !== undefined) {
        assert.ok(
          stopped.some((f) => f.endsWith("dump.rdb")),
          "SAVE wrote an RDB file",
        );
        assert.ok(
          stopped.some((f) => f.includes("appendonly")),
          "the append-only files are there",
        );
      } else {
        assert.ok(
          stopped.some((f) => f.endsWith("relay.sqlite")),
          "the embedded database is there",
        );
      }
      assertClean("relay files (stopped)", scanFiles(stopped, relaySecrets));

      // Logs: every byte the relay printed, since its start.
      const logs = relay.logs();
      assert.match(logs, /"msg":"request"/, "the relay logged requests (the scan has something to read)");
      assertClean(
        "relay logs",
        scanFiles(
          [relay.logFile],
          [...relaySecrets, ...pseudonymNeedles, textNeedle("operator registration token", relay.token)],
        ),
      );
      assert.deepEqual(addressesInLogs(logs, relay, redis), [], "no IP addresses in the relay's logs");

      // Devices: a volunteer's folder holds no report text, PIN or photo bytes; a coordinator's
      // folder holds no report text and no passphrase (its OUT folder, of course, does).
      for (const volunteer of volunteers) {
        assertClean(
          `volunteer folder ${volunteer.name}`,
          scanFiles(filesUnder(volunteer.dir), [...markerNeedles, ...exifNeedles, ...pinNeedles, ...photoNeedles]),
        );
      }
      for (const coordinator of coordinators) {
        assertClean(
          `coordinator folder ${coordinator.name}`,
          scanFiles(filesUnder(coordinator.dir), [...markerNeedles, ...exifNeedles, ...passphraseNeedles]),
        );
      }
    });
  });
}

/** Asserts what one coordinator device wrote: every sent report once, in order, photos intact. */
function checkDelivery(device: string, out: string, volunteers: readonly VolunteerDevice[]): void {
  const reports = readReports(out);
  const ids = reports.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, `${device}: no duplicate ids in reports.jsonl`);
  assert.ok(
    reports.every((r) => r.kind === "enrolled" || r.kind === "status" || r.kind === "acta"),
    `${device}: only enrolled, status and acta reports`,
  );
  for (const volunteer of volunteers) {
    const mine = reports.filter((r) => r.volunteer === volunteer.pseudonym);
    assert.equal(mine.filter((r) => r.kind === "enrolled").length, 1, `${device}: one enrolled for ${volunteer.name}`);
    const seqs = mine.map((r) => r.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      `${device}: ${volunteer.name}'s reports are in seq order`,
    );
    assert.equal(new Set(seqs).size, seqs.length, `${device}: ${volunteer.name}'s seqs are distinct`);
    const sent = mine.filter((r) => r.kind !== "enrolled");
    assert.deepEqual(
      sent.map((r) => [r.kind, r.table, r.text]),
      volunteer.sent.map((s) => [s.kind, s.table, s.text]),
      `${device}: ${volunteer.name}'s reports, each once, in the order sent`,
    );
    for (const [k, line] of sent.entries()) {
      checkPhotos(device, out, line, volunteer.sent[k]?.photos ?? []);
    }
  }
  const expected = volunteers.reduce((sum, v) => sum + v.sent.length + 1, 0);
  assert.equal(reports.length, expected, `${device}: ${expected} reports in all`);
}

function checkPhotos(device: string, out: string, line: ReportLine, sent: readonly SentPhoto[]): void {
  if (line.kind !== "acta") {
    assert.equal(line.photos, undefined);
    return;
  }
  const photos = line.photos ?? [];
  assert.equal(photos.length, sent.length, `${device}: acta ${line.id} has its ${sent.length} photos`);
  for (const [i, photo] of photos.entries()) {
    const original = sent[i] as SentPhoto;
    assert.equal(photo.status, "ok");
    assert.equal(photo.sha256, original.sha256, `${device}: reports.jsonl sha256 of photo ${i} of ${line.id}`);
    assert.equal(photo.size, original.bytes.length);
    const path = photo.path ?? "";
    assert.match(path, /^photos\//);
    const bytes = readFileSync(join(out, path));
    assert.equal(sha256Hex(bytes), original.sha256, `${device}: OUT/${path} is byte-identical`);
  }
}

/** Two 64-byte windows of a photo: one past the headers, one in the middle. */
function photoWindows(label: string, bytes: Uint8Array): Needle[] {
  const at = (offset: number) => bytes.subarray(offset, offset + 64);
  return [
    binaryNeedle(`${label} bytes at 4096`, at(Math.min(4096, bytes.length - 64))),
    binaryNeedle(`${label} bytes in the middle`, at(Math.floor(bytes.length / 2))),
  ];
}

/**
 * IP addresses in the relay's logs. Allowed, exactly: the start-up lines that echo the operator's
 * own configuration — "testigo relay listening on http://127.0.0.1:PORT" (the configured --host)
 * and "store: Redis at redis://127.0.0.1:PORT" (the configured --redis address). Any other
 * IPv4/IPv6 pattern anywhere in the logs (a client's address, even 127.0.0.1) is a failure.
 */
function addressesInLogs(logs: string, relay: LoggedRelay, redis: RedisProcess | undefined): string[] {
  const allowed = new Set([
    `testigo relay listening on ${relay.url}`,
    ...(redis === undefined ? [] : [`store: Redis at redis://127.0.0.1:${redis.port}`]),
  ]);
  return logs
    .split("\n")
    .filter((line) => !allowed.has(line))
    .filter((line) => IPV4.test(line) || IPV6.test(line));
}

function assertClean(where: string, findings: readonly { file: string }[]): void {
  assert.equal(findings.length, 0, `${where}: ${describeFindings(findings as Parameters<typeof describeFindings>[0])}`);
}
