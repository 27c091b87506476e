// Where `fetch` writes what it decrypted. The SDK core only sees this interface; node-output.ts
// writes OUT/reports.jsonl, OUT/photos/ and OUT/quarantine/ on disk, MemoryOutput keeps them in
// memory (tests, browsers). Every write must be durable when it resolves: `fetch` acks an inbox
// item only after that.
import { bytesEqual, concatBytes, DecryptionFailed, sha256, toHex } from "@testigo/protocol";

/** One line of reports.jsonl (docs/cli-coordinator.md lists the fields). */
export interface ReportLine {
  readonly id: string;
  readonly kind: string;
  readonly volunteer: string;
  readonly table: string;
  readonly text: string;
  readonly seq: number;
  /** ISO 8601, from the volunteer's phone clock. */
  readonly sentAt: string;
  /** ISO 8601, from the relay's clock (coarsened by the relay). */
  readonly receivedAt: string;
  readonly tallies?: Readonly<Record<string, number>>;
  readonly photos?: readonly PhotoLine[];
  readonly inviteLabel?: string | null;
  readonly counter?: number;
  readonly reason?: string;
  /**
   * On a line of kind `duress` that is a report signed by the volunteer's duress key (whatever the
   * decoy sent: `checkin`, `status`, `acta`, …): the kind the device signed. Absent on a `duress`
   * report (older devices) and on every other line.
   */
  readonly signedKind?: string;
  /**
   * Set on a decoy's cover item (protocol/spec/duress-and-wipe.md §2.4): sent after a duress
   * unlock in place of something the erased real profile had queued. Its text, tallies and photos
   * are invented: none of it is the volunteer's (its photos are `status: "cover"`, never opened).
   */
  readonly cover?: true;
  /**
   * Set on every report the real key signed that the relay received at or after the volunteer's
   * first duress-signed one: someone holding the duress PIN may have signed it with an image of the
   * phone. Never a sign of safety.
   */
  readonly afterDuress?: true;
}

export interface PhotoLine {
  readonly photoId: string;
  /** Relative to OUT, e.g. "photos/<photoId>.jpg"; null if the photo was quarantined or is a cover. */
  readonly path: string | null;
  /** Lowercase hex SHA-256 of the photo as the volunteer took it (signed in the report). */
  readonly sha256: string;
  readonly size: number;
  /** "cover": a cover acta's photo (random bytes by design): downloaded, neither opened nor written. */
  readonly status: "ok" | "quarantined" | "cover";
}

export const QUARANTINE_REASON = {
  undecryptable: "could not decrypt or verify: corrupted, forged, or sealed to keys this device no longer has",
  unknownSender:
    "signed by a key that is not an enrolled volunteer of this campaign (forged, or an enrollment with an invalid invite)",
  photoCorrupt:
    "the photo's chunks did not decrypt, or did not match the size and SHA-256 the volunteer signed: corrupted or tampered with at the relay",
  /** An enrollment of a new key with an invite another key already enrolled with (H1). */
  inviteReused: "invite already used by another device",
  inviteExpired: "invite expired before the relay enrolled this device",
  notEnrolledAtRelay:
    "an enrollment report for a key the relay never enrolled (an invite copied by an enrolled volunteer)",
  revoked: "volunteer revoked",
  /** An enrollment announcing a duress key that is already some enrolled volunteer's key (or its own signing key). */
  duressKeyTaken:
    "an enrollment report whose duress key is already an enrolled key (an attempt to sign as another volunteer)",
  /**
   * An enrollment announcing a duress key without D's valid proof: the volunteer is enrolled
   * WITHOUT a duress key (its own key is proven), the announced key is ignored.
   */
  duressProofInvalid:
    "an enrollment report whose duress key is not proven by that key's own signature (an attempt to claim another's key as a duress key): the volunteer is enrolled without a duress key",
  /** An enrollment signed by an enrolled volunteer's duress key. */
  enrolledByDuressKey:
    "an enrollment report signed by an enrolled volunteer's duress key (a duress key never enrolls: an attempt to turn it into a volunteer)",
  unprocessable:
    "signed, but could not be processed: inconsistent content (e.g. a photo reference whose size and chunk count disagree) from a faulty or hostile device",
} as const;

/** Quarantine reasons that are attacks on enrollment: counted and shown by `volunteers`. */
export const SECURITY_REASONS: ReadonlySet<string> = new Set([
  QUARANTINE_REASON.inviteReused,
  QUARANTINE_REASON.inviteExpired,
  QUARANTINE_REASON.notEnrolledAtRelay,
  QUARANTINE_REASON.duressKeyTaken,
  QUARANTINE_REASON.duressProofInvalid,
  QUARANTINE_REASON.enrolledByDuressKey,
]);

export interface QuarantineEntry {
  /** The envelope's message id, or the photo id. */
  readonly id: string;
  readonly kind: "envelope" | "photo";
  readonly reason: string;
  readonly receivedAt: string;
  readonly quarantinedAt: string;
  /** base64url of the envelope as the relay served it (ciphertext), for later examination. */
  readonly envelope?: string;
  /** For a refused enrollment: the pseudonym the new key would have had. */
  readonly pseudonym?: string;
  /** For a reused invite: the volunteer who enrolled with it first. */
  readonly inviteHolder?: string;
}

export interface FetchOutput {
  /** Ids of the reports already written (read from the output itself, so it cannot disagree). */
  writtenIds(): Promise<ReadonlySet<string>>;
  /** Relative path of a photo already written for `photoId` (with this SHA-256 if given). */
  findPhoto(photoId: string, sha256?: Uint8Array): Promise<string | undefined>;
  /**
   * Starts (or resumes) downloading a photo: the ciphertext chunks an interrupted run already
   * fetched are kept by the output, so a later run replays them locally instead of fetching them
   * again. The photo's bytes are written as they are decrypted, never held whole in memory.
   */
  startPhoto?(photoId: string): Promise<PhotoDownload>;
  /**
   * For outputs without startPhoto: takes a verified photo whole (so fetch holds it in memory,
   * and an interrupted download starts again). One of the two must be implemented.
   */
  writePhoto?(photoId: string, bytes: Uint8Array): Promise<string>;
  /** Appends lines durably (one fsync for the batch). */
  appendReports(lines: readonly ReportLine[]): Promise<void>;
  writeQuarantine(entry: QuarantineEntry): Promise<void>;
}

/** One photo being written: kept ciphertext chunks (for resuming) and the decrypted bytes so far. */
export interface PhotoDownload {
  /** How many chunks (0, 1, … in order) an earlier run kept. */
  readonly keptChunks: number;
  /** Chunk `index` (< keptChunks) as it was kept. */
  readKept(index: number): Promise<Uint8Array>;
  /** Keeps the next chunk's ciphertext (index = keptChunks so far), for a run that resumes. */
  keep(chunk: Uint8Array): Promise<void>;
  /** Appends decrypted photo bytes (a fresh photo file each run: kept chunks are replayed). */
  write(piece: Uint8Array): Promise<void>;
  /**
   * Checks what was written against the signed size and SHA-256, makes it durable under its final
   * name and drops the kept chunks; returns the relative path. Throws DecryptionFailed on a
   * mismatch (nothing is declared written).
   */
  commit(sha256: Uint8Array, size: number): Promise<string>;
  /** Drops the written bytes, keeping the kept chunks (the next run resumes from them). */
  close(): Promise<void>;
  /** Drops everything: the photo is quarantined, or its kept chunks proved unreadable. */
  discard(): Promise<void>;
}

/** The output's PhotoDownload for a photo (a whole-photo buffer for outputs with writePhoto only). */
export async function startPhotoDownload(output: FetchOutput, photoId: string): Promise<PhotoDownload> {
  if (output.startPhoto !== undefined) return output.startPhoto(photoId);
  const writePhoto = output.writePhoto?.bind(output);
  if (writePhoto === undefined) throw new TypeError("a FetchOutput needs startPhoto or writePhoto");
  const pieces: Uint8Array[] = [];
  return {
    keptChunks: 0,
    readKept: async (index) => {
      throw new RangeError(`no kept chunk ${index}`);
    },
    keep: async () => undefined,
    write: async (piece) => {
      pieces.push(piece.slice());
    },
    commit: async (digest, size) => {
      const bytes = concatBytes(...pieces);
      pieces.length = 0;
      if (bytes.length !== size || !bytesEqual(sha256(bytes), digest)) throw new DecryptionFailed();
      return writePhoto(photoId, bytes);
    },
    close: async () => {
      pieces.length = 0;
    },
    discard: async () => {
      pieces.length = 0;
    },
  };
}

/** File extension from the photo's first bytes; the bytes themselves are never changed. */
export function photoExtension(bytes: Uint8Array): string {
  const b = (i: number) => bytes[i] ?? -1;
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return "jpg";
  if (b(0) === 0x89 && b(1) === 0x50 && b(2) === 0x4e && b(3) === 0x47) return "png";
  if (b(0) === 0x52 && b(1) === 0x49 && b(2) === 0x46 && b(3) === 0x46 && b(8) === 0x57 && b(9) === 0x45) return "webp";
  if (b(4) === 0x66 && b(5) === 0x74 && b(6) === 0x79 && b(7) === 0x70) return "heic";
  return "bin";
}

export function photoFileName(photoId: string, bytes: Uint8Array): string {
  return `${photoId}.${photoExtension(bytes)}`;
}

/** In-memory output for tests and browser apps that hand the results on themselves. */
export class MemoryOutput implements FetchOutput {
  readonly reports: ReportLine[] = [];
  readonly photos = new Map<string, Uint8Array>();
  readonly quarantine = new Map<string, QuarantineEntry>();
  private readonly digests = new Map<string, string>();

  async writtenIds(): Promise<ReadonlySet<string>> {
    return new Set(this.reports.map((r) => r.id));
  }
  async findPhoto(photoId: string, sha256?: Uint8Array): Promise<string | undefined> {
    for (const path of this.photos.keys()) {
      if (!path.startsWith(`photos/${photoId}.`)) continue;
      if (sha256 === undefined || this.digests.get(path) === toHex(sha256)) return path;
    }
    return undefined;
  }
  /** Ciphertext chunks kept per photo id, as NodeFetchOutput keeps them on disk across runs. */
  readonly kept = new Map<string, Uint8Array[]>();

  async startPhoto(photoId: string): Promise<PhotoDownload> {
    const kept = this.kept.get(photoId) ?? [];
    this.kept.set(photoId, kept);
    const pieces: Uint8Array[] = [];
    return {
      keptChunks: kept.length,
      readKept: async (index) => {
        const chunk = kept[index];
        if (chunk === undefined) throw new RangeError(`no kept chunk ${index}`);
        return chunk.slice();
      },
      keep: async (chunk) => {
        kept.push(chunk.slice());
      },
      write: async (piece) => {
        pieces.push(piece.slice());
      },
      commit: async (digest, size) => {
        const bytes = concatBytes(...pieces);
        if (bytes.length !== size || !bytesEqual(sha256(bytes), digest)) throw new DecryptionFailed();
        const path = `photos/${photoFileName(photoId, bytes)}`;
        this.photos.set(path, bytes);
        this.digests.set(path, toHex(digest));
        this.kept.delete(photoId);
        return path;
      },
      close: async () => {
        pieces.length = 0;
      },
      discard: async () => {
        pieces.length = 0;
        this.kept.delete(photoId);
      },
    };
  }
  async appendReports(lines: readonly ReportLine[]): Promise<void> {
    this.reports.push(...lines);
  }
  async writeQuarantine(entry: QuarantineEntry): Promise<void> {
    this.quarantine.set(entry.id, entry);
  }
}
