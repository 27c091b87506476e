// The seized-relay scanner itself (helpers/scan.ts): a scan that finds nothing is only evidence
// if the scanner would have found the secret. Plants secrets, in every form it claims to
// search, at random offsets inside random files, and checks it names the file and the offset.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { base64Fragment, binaryNeedle, filesUnder, formsOf, scanFiles, textNeedle } from "./helpers/scan.js";

describe("seized-relay scanner", () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "testigo-scan-"));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it("finds a text marker as UTF-8, UTF-16LE, UTF-16BE, base64 and base64url at any alignment, with its offset", () => {
    const marker = `MARKER-${randomBytes(8).toString("hex")}`;
    const encodings: [string, Buffer][] = [
      ["raw", Buffer.from(marker, "utf8")],
      ["utf16le", Buffer.from(marker, "utf16le")],
      ["utf16be", Buffer.from(marker, "utf16le").swap16()],
    ];
    for (const shift of [0, 1, 2]) {
      const shifted = Buffer.concat([randomBytes(shift), Buffer.from(marker)]);
      encodings.push([`base64@${shift}`, Buffer.from(shifted.toString("base64"), "latin1")]);
      encodings.push([`base64url@${shift}`, Buffer.from(shifted.toString("base64url"), "latin1")]);
    }
    for (const [name, encoded] of encodings) {
      const prefix = randomBytes(1000);
      const file = join(work, `planted-${name}`);
      writeFileSync(file, Buffer.concat([prefix, encoded, randomBytes(1000)]));
      const findings = scanFiles([file], [textNeedle("the marker", marker)]);
      assert.ok(findings.length > 0, `found as ${name}`);
      assert.ok(
        findings.every((f) => f.file === file && f.label === "the marker"),
        `${name}: names the file and the needle`,
      );
      // The encoded marker starts at the prefix's end (a base64 fragment a character or two later).
      assert.ok(
        findings.some((f) => f.offset >= prefix.length && f.offset <= prefix.length + 3),
        `${name}: offset ${findings.map((f) => f.offset)}`,
      );
    }
  });

  it("finds binary secrets raw, as hex and as base64, in files anywhere under a folder", () => {
    const secret = randomBytes(16);
    const nested = join(work, "nested", "deeper");
    mkdirSync(nested, { recursive: true });
    const files = {
      raw: Buffer.concat([randomBytes(33), secret]),
      hex: Buffer.from(`id=${secret.toString("hex")};`),
      HEX: Buffer.from(`id=${secret.toString("hex").toUpperCase()};`),
      b64: Buffer.from(`{"secret":"${secret.toString("base64")}"}`),
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(nested, name), content);
    const findings = scanFiles(filesUnder(join(work, "nested")), [binaryNeedle("invite secret", secret)]);
    assert.deepEqual(
      new Set(findings.map((f) => f.file)),
      new Set(Object.keys(files).map((name) => join(nested, name))),
    );
    assert.deepEqual(
      findings.find((f) => f.file === join(nested, "raw")),
      { file: join(nested, "raw"), offset: 33, label: "invite secret", form: "raw" },
    );
  });

  it("finds nothing in files that do not hold the secret", () => {
    const file = join(work, "clean");
    writeFileSync(file, randomBytes(256 * 1024));
    assert.deepEqual(scanFiles([file], [textNeedle("m", `MARKER-${randomBytes(8).toString("hex")}`)]), []);
  });

  it("base64 fragments are exactly the characters that encode only the needle (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }),
        (needle, before, after) => {
          const whole = Buffer.concat([before, needle, after]);
          const shift = (before.length % 3) as 0 | 1 | 2;
          for (const alphabet of ["base64", "base64url"] as const) {
            const fragment = base64Fragment(needle, shift, alphabet);
            if (!whole.toString(alphabet).includes(fragment)) return false;
          }
          return true;
        },
      ),
    );
  });

  it("searches distinct forms only, and no encoded fragment too short to be meaningful", () => {
    const forms = formsOf(textNeedle("pin", "4815162342"));
    assert.equal(new Set(forms.map((f) => f.bytes.toString("latin1"))).size, forms.length);
    assert.ok(forms.every((f) => !f.form.startsWith("base64") || f.bytes.length >= 12));
  });
});
