// The volunteer list: this device's registry (filled by `enrolled` reports) joined with the
// relay's view (enrollment time, revoked). A volunteer the relay knows but whose enrollment
// report has not been fetched yet appears with `known: false`. A revocation seen at the relay is
// recorded in the registry, so `fetch` refuses that key's later reports even offline.
//
// `silent` flags an active volunteer from whom nothing (no report, no check-in) has arrived within
// the expected interval: on election night, a phone that stops checking in may have been seized.
import type { CoordinatorDevice } from "./device.js";
import type { WipeState } from "./state.js";

export interface VolunteerView {
  readonly pseudonym: string;
  readonly inviteLabel: string | null;
  /** ISO 8601. */
  readonly enrolledAt: string | null;
  readonly lastSeen: string | null;
  /** Reports received, by kind. */
  readonly counts: Readonly<Record<string, number>>;
  readonly duress: boolean;
  readonly wipe: WipeState;
  /**
   * True if the relay lists the volunteer as revoked or this device revoked its key (after a
   * wipe-ack); null if neither is known (relay not asked, or not listing it).
   */
  readonly revoked: boolean | null;
  /**
   * Security alerts: enrollments of other keys refused because they reused this volunteer's
   * invite. Not 0 means the invite's secret leaked, or this volunteer is forging identities.
   */
  readonly security: number;
  /** False until this device has fetched the volunteer's enrollment report. */
  readonly known: boolean;
  /** ISO 8601: the latest `checkin` report, or null. */
  readonly lastCheckin: string | null;
  /**
   * True for a volunteer not revoked whose latest report of any kind (or, with none, its
   * enrollment) is older than `silentAfterMs`.
   */
  readonly silent: boolean;
  /** ISO 8601: a requested wipe not acknowledged by then gets the volunteer revoked; else null. */
  readonly wipeDeadline: string | null;
}

/** Default for `silentAfterMs`: 30 minutes without any report. */
export const DEFAULT_SILENT_AFTER_MS = 30 * 60 * 1000;

export interface ListVolunteersOptions {
  /** Ask the relay (revoked state, volunteers not fetched yet); default true. */
  readonly relay?: boolean;
  readonly silentAfterMs?: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export async function listVolunteers(
  device: CoordinatorDevice,
  options: ListVolunteersOptions = {},
): Promise<VolunteerView[]> {
  const now = device.now();
  const silentAfter = options.silentAfterMs ?? DEFAULT_SILENT_AFTER_MS;
  const isSilent = (revoked: boolean | null, last: number | undefined) =>
    revoked !== true && last !== undefined && now - last > silentAfter;
  const local = await device.volunteers();
  const remote = new Map<string, { enrolledAt: number; revoked: boolean }>();
  if (options.relay !== false) {
    await device.maintainEpochKeys();
    for (const v of (await device.client.listVolunteers()).volunteers) remote.set(v.pseudonym, v);
  }
  for (const [index, v] of local.entries()) {
    if (remote.get(v.pseudonym)?.revoked !== true || v.revoked !== undefined) continue;
    const updated = { ...v, revoked: { reason: "relay" as const, at: device.now() } };
    await device.putVolunteer(updated);
    local[index] = updated;
  }
  const views: VolunteerView[] = local.map((v) => {
    const revoked = v.revoked !== undefined ? true : (remote.get(v.pseudonym)?.revoked ?? null);
    return {
      pseudonym: v.pseudonym,
      inviteLabel: v.label ?? null,
      enrolledAt: iso(v.enrolledAt),
      lastSeen: iso(v.lastSeen),
      counts: v.counts,
      duress: v.duress,
      wipe: v.wipe,
      revoked,
      security: v.security ?? 0,
      known: true,
      lastCheckin: iso(v.lastCheckin),
      silent: isSilent(revoked, v.lastSeen ?? v.enrolledAt),
      wipeDeadline: v.wipe === "requested" ? iso(v.wipeDeadline) : null,
    };
  });
  const seen = new Set(local.map((v) => v.pseudonym));
  for (const [pseudonym, v] of remote) {
    if (seen.has(pseudonym)) continue;
    views.push({
      pseudonym,
      inviteLabel: null,
      enrolledAt: iso(v.enrolledAt),
      lastSeen: null,
      counts: {},
      duress: false,
      wipe: "none",
      revoked: v.revoked,
      security: 0,
      known: false,
      lastCheckin: null,
      silent: isSilent(v.revoked, v.enrolledAt),
      wipeDeadline: null,
    });
  }
  return views.sort((a, b) => a.pseudonym.localeCompare(b.pseudonym));
}
