import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkQueue, formatReport, type OutputLine } from "./checker.js";
import type { HistoryRecord } from "./history.js";

const start: HistoryRecord = { t: "start", volunteer: "v1", pseudonym: "p1" };
const queued = (id: string, seq: number, photos: { photoId: string; sha256: string }[] = []): HistoryRecord => ({
  t: "queued",
  volunteer: "v1",
  n: seq,
  id,
  seq,
  kind: photos.length > 0 ? "acta" : "status",
  photos,
});
const acked = (id: string): HistoryRecord => ({ t: "acked", volunteer: "v1", id, kind: "status" });
const line = (id: string, seq: number, extra: Partial<OutputLine> = {}): OutputLine => ({
  id,
  kind: "status",
  volunteer: "p1",
  seq,
  ...extra,
});

describe("the queue checker", () => {
  it("passes when every acknowledged report is written once, in order", () => {
    const report = checkQueue({
      history: [start, queued("a", 1), acked("a"), queued("b", 2), acked("b"), queued("c", 3)],
      lines: [line("a", 1), line("b", 2), line("c", 3)],
    });
    assert.equal(report.ok, true, formatReport(report));
    assert.deepEqual([report.acknowledged, report.delivered, report.deliveredUnacknowledged], [2, 2, 1]);
  });

  it("counts an acknowledged report missing from the output as lost", () => {
    const report = checkQueue({ history: [start, queued("a", 1), acked("a"), acked("b")], lines: [line("a", 1)] });
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.lost.map((l) => l.id),
      ["b"],
    );
    assert.match(formatReport(report), /FAIL[\s\S]*lost 1[\s\S]*LOST[\s\S]*v1 status b/);
  });

  it("counts a report written twice, by id or by volunteer and seq, as duplicated", () => {
    const report = checkQueue({
      history: [start, acked("a"), acked("b")],
      lines: [line("a", 1), line("a", 1), line("b", 2), line("b2", 2)],
    });
    assert.deepEqual(
      report.duplicated.map((d) => d.key),
      ["a", "p1 seq 1", "p1 seq 2"],
    );
    assert.equal(report.ok, false);
  });

  it("counts a lower seq written after a higher one as reordered, but lets an acta wait for its photos", () => {
    const photo = { photoId: "ph", path: "photos/ph.jpg", sha256: "00", status: "ok" };
    const report = checkQueue({
      history: [start, acked("a"), acked("b"), acked("c"), acked("d")],
      lines: [line("b", 2), line("c", 3), line("a", 1, { kind: "acta", photos: [photo] }), line("d", 0)],
    });
    assert.equal(report.deferredActas, 1);
    assert.deepEqual(
      report.reordered.map((r) => [r.id, r.seq, r.afterSeq]),
      [["d", 0, 3]],
    );
  });

  it("reports an acta whose photo is missing or differs as damaged", () => {
    const sent = [{ photoId: "ph", sha256: "aa" }];
    const report = checkQueue({
      history: [start, queued("a", 1, sent), acked("a"), queued("b", 2, sent), acked("b")],
      lines: [
        line("a", 1, { kind: "acta", photos: [{ photoId: "ph", path: "photos/a", sha256: "aa", status: "ok" }] }),
        line("b", 2, { kind: "acta", photos: [{ photoId: "ph", path: null, sha256: "aa", status: "quarantined" }] }),
      ],
      photoSha256: (path) => (path === "photos/a" ? "bb" : undefined),
    });
    assert.deepEqual(
      report.damaged.map((d) => d.id),
      ["a", "b"],
    );
    assert.equal(report.ok, false);
  });
});
