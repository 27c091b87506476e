// Photo download under the relay's DEFAULT rate limits (120 requests per session, 10/s refill):
// bounded concurrency, Retry-After honoured, partial progress kept on disk across an interrupted
// fetch, the photo verified before it is declared written. Real relay process, real files.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initSodium, PHOTO_CHUNK_CIPHERTEXT_BYTES, photoChunkCount } from "@testigo/protocol";
import { syntheticActa } from "../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { fetchTransport, type HttpTransport } from "../transport/http.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { NodeFetchOutput, PARTIAL_DIR, REPORTS_FILE } from "./node-output.js";
import { type TestCampaign, testCampaign } from "./node-test-campaign.js";
import { TestVolunteer } from "./node-test-volunteer.js";

const CHUNK_ROUTE = /\/photos\/[^/]+\/chunks\/\d+$/;

/** Counts chunk GETs (answered and refused) and the most in flight at once. */
function countingTransport() {
  const counts = { ok: 0, limited: 0, inFlight: 0, maxInFlight: 0 };
  const transport: HttpTransport = async (request) => {
    const chunk = request.method === "GET" && CHUNK_ROUTE.test(request.url);
    if (chunk) counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
    try {
      const response = await fetchTransport(request);
      if (chunk && response.status === 200) counts.ok++;
      if (chunk && response.status === 429) counts.limited++;
      return response;
    } finally {
      if (chunk) counts.inFlight--;
    }
  };
  return { counts, transport };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("coordinator photo download with the relay's default rate limits", () => {
  let relay: RelayProcess;
  let campaign: TestCampaign;
  const work = mkdtempSync(join(tmpdir(), "testigo-photo-download-"));

  before(async () => {
    await initSodium();
    relay = await startRelay(); // default limits
    campaign = await testCampaign(relay);
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  const device = (transport: HttpTransport) => campaign.device({ transport });

  async function volunteerWithActa(size: number) {
    const [invite] = await mintInvites(await device(fetchTransport), { count: 1 });
    const volunteer = await TestVolunteer.enroll(invite?.code ?? "", campaign.campaignId);
    const photo = syntheticActa(size);
    const actaId = await volunteer.acta("2401.1", [photo.bytes]);
    return { photo, actaId };
  }

  it("fetches a 12 MiB photo (192 chunks, more than one bucket) in one run, byte-identical", async () => {
    const { photo, actaId } = await volunteerWithActa(12 * 1024 * 1024);
    const out = join(work, "large");
    const { counts, transport } = countingTransport();
    const summary = await fetchInbox(await device(transport), await NodeFetchOutput.open(out));
    assert.equal(summary.photos, 1);
    assert.equal(summary.waitingForPhotos, 0);
    const lines = readLines(out);
    const acta = lines.find((l) => l.id === actaId);
    const path = acta?.photos?.[0]?.path;
    assert.ok(path, "the acta line names its photo");
    assert.equal(sha256(readFileSync(join(out, path))), sha256(photo.bytes));
    assert.equal(acta?.photos?.[0]?.sha256, sha256(photo.bytes));
    assert.ok(counts.maxInFlight <= 4, `at most 4 chunk requests in flight, saw ${counts.maxInFlight}`);
    assert.equal(counts.ok, photoChunkCount(photo.bytes.length), "each chunk fetched once");
    assert.ok(!existsSync(join(out, PARTIAL_DIR, `${acta?.photos?.[0]?.photoId}.chunks`)), "no partial left");
  });

  it("resumes an interrupted download from the chunks it kept: none fetched twice, same bytes", async () => {
    const { photo, actaId } = await volunteerWithActa(5 * 1024 * 1024);
    const out = join(work, "resume");
    let chunks = 0;
    const first = countingTransport();
    await assert.rejects(
      fetchInbox(await device(first.transport), await NodeFetchOutput.open(out), {
        onStep: (step) => {
          if (step === "chunk" && ++chunks === 30) throw new Error("killed mid-photo");
        },
      }),
      /killed mid-photo/,
    );
    assert.ok(!existsSync(join(out, REPORTS_FILE)) || readLines(out).every((l) => l.id !== actaId));
    const partial = join(out, PARTIAL_DIR);
    const [keptFile = ""] = readdirSync(partial);
    const keptChunks = statSync(join(partial, keptFile)).size / PHOTO_CHUNK_CIPHERTEXT_BYTES;
    assert.equal(keptChunks, 30, "every chunk consumed before the kill was kept");

    const second = countingTransport();
    const summary = await fetchInbox(await device(second.transport), await NodeFetchOutput.open(out));
    assert.equal(summary.photos, 1);
    assert.equal(
      second.counts.ok,
      photoChunkCount(photo.bytes.length) - keptChunks,
      "the resumed run fetches only the chunks not kept",
    );
    const acta = readLines(out).filter((l) => l.id === actaId);
    assert.equal(acta.length, 1, "written once");
    const path = acta[0]?.photos?.[0]?.path;
    assert.ok(path);
    assert.equal(sha256(readFileSync(join(out, path))), sha256(photo.bytes));
    assert.deepEqual(readdirSync(partial), [], "partial chunks removed once the photo is written");
  });

  it("drops kept chunks damaged on disk and fetches them again", async () => {
    const { photo, actaId } = await volunteerWithActa(1024 * 1024);
    const out = join(work, "damaged");
    let chunks = 0;
    await assert.rejects(
      fetchInbox(await device(fetchTransport), await NodeFetchOutput.open(out), {
        onStep: (step) => {
          if (step === "chunk" && ++chunks === 5) throw new Error("killed mid-photo");
        },
      }),
      /killed/,
    );
    const partial = join(out, PARTIAL_DIR);
    const [keptFile = ""] = readdirSync(partial);
    const keptPath = join(partial, keptFile);
    const bytes = readFileSync(keptPath);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    writeFileSync(keptPath, bytes);
    const summary = await fetchInbox(await device(fetchTransport), await NodeFetchOutput.open(out));
    assert.equal(summary.photos, 1);
    assert.equal(summary.quarantined, 0);
    const path = readLines(out).find((l) => l.id === actaId)?.photos?.[0]?.path;
    assert.ok(path);
    assert.equal(sha256(readFileSync(join(out, path))), sha256(photo.bytes));
  });
});

interface Line {
  readonly id: string;
  readonly photos?: readonly { photoId: string; path: string | null; sha256: string }[];
}

function readLines(out: string): Line[] {
  const text = readFileSync(join(out, REPORTS_FILE), "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Line);
}
