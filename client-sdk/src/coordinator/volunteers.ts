// The volunteer list: this device's registry (filled by `enrolled` reports) joined with the
// relay's view (enrollment time, revoked). A volunteer the relay knows but whose enrollment
// report has not been fetched yet appears with `known: false`. A revocation seen at the relay is
// recorded in the registry, so `fetch` refuses that key's later reports even offline.
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
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export async function listVolunteers(
  device: CoordinatorDevice,
  options: { relay?: boolean } = {},
): Promise<VolunteerView[]> {
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
  const views: VolunteerView[] = local.map((v) => ({
    pseudonym: v.pseudonym,
    inviteLabel: v.label ?? null,
    enrolledAt: iso(v.enrolledAt),
    lastSeen: iso(v.lastSeen),
    counts: v.counts,
    duress: v.duress,
    wipe: v.wipe,
    revoked: v.revoked !== undefined ? true : (remote.get(v.pseudonym)?.revoked ?? null),
    security: v.security ?? 0,
    known: true,
  }));
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
    });
  }
  return views.sort((a, b) => a.pseudonym.localeCompare(b.pseudonym));
}
