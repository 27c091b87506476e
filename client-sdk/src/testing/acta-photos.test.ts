import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { actaPhotos, realActaNames, SHARED_ACTAS_DIR, syntheticActa } from "./acta-photos.js";

describe("acta photos for tests", () => {
  it("uses the real scans when present (and CI always has them)", () => {
    if (process.env.CI === "true") assert.ok(existsSync(SHARED_ACTAS_DIR), `CI=true needs ${SHARED_ACTAS_DIR}`);
    const photos = actaPhotos(3);
    assert.equal(photos.length, 3);
    if (realActaNames().length > 0) {
      for (const photo of photos) assert.deepEqual([...photo.bytes.subarray(0, 2)], [0xff, 0xd8], photo.name);
    }
  });

  it("makes JPEG-structured synthetic photos with an EXIF marker", () => {
    const photo = syntheticActa(100_000, "EXIF-MARKER-abc");
    assert.equal(photo.bytes.length, 100_000);
    assert.deepEqual([...photo.bytes.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xe1]);
    assert.deepEqual([...photo.bytes.subarray(-2)], [0xff, 0xd9]);
    assert.ok(Buffer.from(photo.bytes).includes("EXIF-MARKER-abc"));
  });
});
