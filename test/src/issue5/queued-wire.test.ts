// Issue 5, a duress unlock with reports, an acta and photos queued (DESIGN §2 A1–A3,
// protocol/spec/duress-and-wipe.md §2.4): two images of the same phone, one unlocked with the PIN
// and one with the duress PIN through the real `testigo` command. `status --json` shows the same
// thing under both PINs (and sends nothing); `unlock` makes the same requests — route, headers,
// body size, answer — as captured by a loopback proxy in front of a real relay process; the
// coordinators then get the real reports and photos from one image, and from the other cover
// items of the same shape, flagged `duress` and `cover`, whose photos are never written.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { volunteer as sdk } from "@testigo/client-sdk";
import { initSodium, photoChunkCount } from "@testigo/protocol";
import { NodeStorage } from "../../../client-sdk/dist/storage/node-storage.js";
import { type CoordinatorDevice, fetchAll, initCoordinator, invite, readReports } from "../helpers/campaign.js";
import { syntheticPhoto } from "../helpers/photos.js";
import { type LoggedRelay, startLoggedRelay } from "../helpers/relay.js";
import { type CapturedRequest, type CaptureProxy, startCaptureProxy } from "./capture-proxy.js";
import { enrollSdkPhone, volunteerCli } from "./fixture.js";

const PHONES = 2;

interface Phone {
  readonly pseudonym: string;
  /** The two images of the phone, taken after its reports were queued. */
  readonly withPin: string;
  readonly withDuress: string;
  readonly pinFile: string;
  readonly duressPinFile: string;
  readonly markers: readonly string[];
}

/** What the relay (or an observer of its traffic) sees of one command, order-free (the SDK reads the roster and epoch keys concurrently). */
function seen(captured: readonly CapturedRequest[]): string[] {
  return captured.map(({ connection: _c, actor: _a, ...rest }) => JSON.stringify(rest)).sort();
}

describe("issue 5: a duress unlock with reports, an acta and photos queued (real binary, capturing proxy)", () => {
  let work: string;
  let relay: LoggedRelay;
  let proxy: CaptureProxy;
  let coordinator: CoordinatorDevice;
  const phones: Phone[] = [];

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-issue5-queued-"));
    relay = await startLoggedRelay({
      env: { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" },
    });
    proxy = await startCaptureProxy(relay.url);
    coordinator = await initCoordinator(work, "coord", proxy.url, relay.token);
    for (const [i, code] of (await invite(coordinator, PHONES)).entries()) {
      const enrolled = await enrollSdkPhone(work, `phone-${i}`, code);
      const { dir, pin } = enrolled;
      // Queued with the PIN while the phone is offline (the SDK queues without sending): i + 1
      // reports, an acta with i + 1 photos of different sizes, one more report.
      const real = await sdk.Volunteer.open(await NodeStorage.open(dir), pin);
      const markers: string[] = [];
      for (let r = 0; r <= i; r++) {
        markers.push(`QUEUED-MARKER-${i}-${r}`);
        await real.report(`T-${i}`, `${markers.at(-1)} long queue at the door`);
      }
      const photos = Array.from({ length: i + 1 }, (_, p) => syntheticPhoto(150_000 + 210_000 * p + 13_000 * i));
      markers.push(...photos.map((p) => p.exifMarker));
      await real.acta({ table: `T-${i}`, photos: photos.map((p) => p.bytes), tallies: { A: 100 + i, B: 7 } });
      markers.push(`QUEUED-MARKER-${i}-last`);
      await real.report(`T-${i}`, `${markers.at(-1)} counting started`);
      const withPin = join(work, `phone-${i}-pin`);
      const withDuress = join(work, `phone-${i}-duress`);
      cpSync(dir, withPin, { recursive: true });
      cpSync(dir, withDuress, { recursive: true });
      phones.push({
        pseudonym: enrolled.pseudonym,
        withPin,
        withDuress,
        pinFile: enrolled.pinFile,
        duressPinFile: enrolled.duressPinFile,
        markers,
      });
    }
    proxy.take();
  });

  after(async () => {
    await proxy?.close();
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it("`status --json` shows the same outbox, sync times and notices under both PINs, and sends nothing", async () => {
    for (const [i, phone] of phones.entries()) {
      const withPin = await volunteerCli("status", { dir: phone.withPin }, phone.pinFile, ["--json"]);
      const withDuress = await volunteerCli("status", { dir: phone.withDuress }, phone.duressPinFile, ["--json"]);
      assert.equal(withPin.code, 0, withPin.stderr);
      assert.deepEqual([withDuress.code, withDuress.stdout, withDuress.stderr], [0, withPin.stdout, withPin.stderr]);
      const shown = JSON.parse(withPin.stdout) as { outbox: Record<string, number>; pseudonym: string };
      assert.equal(shown.pseudonym, phone.pseudonym);
      assert.deepEqual([shown.outbox.envelopes, shown.outbox.actas, shown.outbox.photos], [i + 3, 1, i + 1]);
    }
    assert.deepEqual(proxy.take(), [], "status sends nothing");
  });

  it("`unlock` makes the same requests with either PIN: routes, headers, body sizes, answers", async () => {
    for (const phone of phones) {
      const withPin = await volunteerCli("unlock", { dir: phone.withPin }, phone.pinFile);
      const pinRequests = proxy.take();
      const withDuress = await volunteerCli("unlock", { dir: phone.withDuress }, phone.duressPinFile);
      const duressRequests = proxy.take();
      assert.deepEqual([withPin.code, withPin.stdout], [0, "unlocked\n"], withPin.stderr);
      assert.deepEqual([withDuress.code, withDuress.stdout, withDuress.stderr], [0, withPin.stdout, withPin.stderr]);
      assert.ok(
        pinRequests.some((r) => r.route.includes("chunk")),
        "the photos were uploaded",
      );
      assert.deepEqual(seen(duressRequests), seen(pinRequests));
      // Afterwards both images show an outbox with nothing left to send.
      const after = await Promise.all([
        volunteerCli("status", { dir: phone.withPin }, phone.pinFile, ["--json"]),
        volunteerCli("status", { dir: phone.withDuress }, phone.duressPinFile, ["--json"]),
      ]);
      const outboxes = after.map((run) => (JSON.parse(run.stdout) as { outbox: unknown }).outbox);
      assert.deepEqual(outboxes[1], outboxes[0]);
      assert.deepEqual(outboxes[0], { envelopes: 0, actas: 0, photos: 0, chunks: 0, refused: 0, kept: 0 });
    }
  });

  it("the coordinators get the real reports and photos from one image, cover items from the other", async () => {
    const out = join(work, "out");
    proxy.take();
    await fetchAll(coordinator, out);
    // The coordinator downloads cover photos like real ones (and drops them): the relay sees the
    // same chunk downloads for both.
    const chunkDownloads = proxy.take().filter((r) => r.method === "GET" && r.route.includes("/chunks/")).length;
    const reports = readReports(out);
    const realChunks = reports
      .filter((r) => r.kind === "acta")
      .flatMap((r) => r.photos ?? [])
      .reduce((sum, p) => sum + photoChunkCount(p.size), 0);
    assert.equal(chunkDownloads, 2 * realChunks);
    for (const [i, phone] of phones.entries()) {
      const mine = reports.filter((r) => r.volunteer === phone.pseudonym && r.kind !== "enrolled");
      const real = mine.filter((r) => r.kind !== "duress");
      const covers = mine.filter((r) => r.kind === "duress");
      // (An acta's line is written once its photos are in: after the report queued behind it.)
      assert.deepEqual(real.map((r) => r.kind).sort(), ["acta", ...Array.from({ length: i + 2 }, () => "status")]);
      assert.ok(real.every((r) => r.cover === undefined));
      assert.deepEqual(
        covers.map((r) => [r.signedKind, r.cover]),
        real.map((r) => [r.kind, true]),
      );
      const realActa = real.find((r) => r.kind === "acta");
      const coverActa = covers.find((r) => r.signedKind === "acta");
      assert.deepEqual(
        realActa?.photos?.map((p) => p.status),
        Array.from({ length: i + 1 }, () => "ok"),
      );
      assert.deepEqual(
        coverActa?.photos?.map((p) => [p.status, p.path]),
        Array.from({ length: i + 1 }, () => ["cover", null]),
      );
      // The real texts reached the coordinators only from the image opened with the PIN.
      const coverText = JSON.stringify(covers);
      for (const marker of phone.markers) assert.ok(!coverText.includes(marker), marker);
      assert.ok(JSON.stringify(real).includes(phone.markers[0] ?? "?"));
    }
  });
});
