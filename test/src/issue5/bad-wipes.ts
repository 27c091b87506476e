// Wipe control messages a device must refuse, as fast-check arbitraries. Each arbitrary yields a
// plain description (printable, reproducible from the seed); `buildWipe` seals it with the real
// protocol (sealControl) and the keys of the case:
//   mutated      a VALID wipe (fresh counter, aimed at this device), then bit flips, truncation or extension
//   outsider     signed by a key that is not in the roster (claiming a roster device id, or another id)
//   impostor     signed by roster device B while `from` names roster device A
//   replayed     a roster device's own signature, counter ≤ the last one the device accepted from it
//   expired      expiresAt in the past
//   future       issuedAt or counter beyond the device's clock + MAX_CONTROL_CLOCK_SKEW_MS
//   other-target encrypted to this device's key but addressed (AD and payload) to another pseudonym
//   other-device sealed to another volunteer altogether
//   other-campaign  campaignId of another campaign
// Plus `valid`: the positive control, a wipe the device must accept.
import {
  CONTROL_KIND,
  CONTROL_MESSAGE_BYTES,
  CONTROL_VERSION,
  type ControlPayload,
  MAX_CONTROL_CLOCK_SKEW_MS,
  MAX_CONTROL_LIFETIME_MS,
  randomBytes,
  type SigningKeyPair,
  sealControl,
  toBase64url,
} from "@testigo/protocol";
import fc from "fast-check";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Margin kept from every time boundary, so that a run's duration never turns a bad case into a valid one. */
const MARGIN_MS = 10 * 60 * 1000;

export interface RosterSigner {
  readonly deviceId: string;
  readonly signing: SigningKeyPair;
}

export interface WipeContext {
  readonly campaignId: string;
  readonly me: { readonly pseudonym: string; readonly encryptionKey: Uint8Array };
  /** Another enrolled volunteer of the same campaign. */
  readonly other: { readonly pseudonym: string; readonly encryptionKey: Uint8Array };
  /** The roster's devices (at least two), with the counter the device last accepted from each. */
  readonly signers: readonly (RosterSigner & { readonly lastCounter: number })[];
  /** A signing key pair that is in no roster. */
  readonly outsider: SigningKeyPair;
  readonly now: () => number;
}

export type Mutation =
  | { readonly type: "flip"; readonly bits: readonly (readonly [number, number])[] }
  | { readonly type: "truncate"; readonly length: number }
  | { readonly type: "extend"; readonly extra: readonly number[] }
  | { readonly type: "truncate-flip"; readonly length: number; readonly bit: readonly [number, number] };

export type BadWipe =
  | { readonly case: "valid"; readonly signer: number; readonly counterStep: number }
  | { readonly case: "mutated"; readonly signer: number; readonly counterStep: number; readonly mutation: Mutation }
  | { readonly case: "outsider"; readonly claimed: number | string; readonly counterStep: number }
  | { readonly case: "impostor"; readonly signer: number; readonly claimed: number; readonly counterStep: number }
  | { readonly case: "replayed"; readonly signer: number; readonly counterBack: number }
  | {
      readonly case: "expired";
      readonly signer: number;
      readonly counterStep: number;
      readonly agoMs: number;
      readonly lifeMs: number;
    }
  | {
      readonly case: "future";
      readonly signer: number;
      readonly issuedAheadMs: number;
      readonly counterAheadMs: number;
    }
  | { readonly case: "other-target"; readonly signer: number; readonly counterStep: number }
  | { readonly case: "other-device"; readonly signer: number; readonly counterStep: number }
  | { readonly case: "other-campaign"; readonly signer: number; readonly counterStep: number };

/** Every kind of refused wipe. `sameSize` leaves out truncation and extension (the relay refuses other sizes). */
export function badWipe(signerCount: number, options: { sameSize?: boolean } = {}): fc.Arbitrary<BadWipe> {
  const signer = fc.nat({ max: signerCount - 1 });
  const counterStep = fc.integer({ min: 1, max: 60_000 });
  const position = fc.tuple(fc.nat({ max: CONTROL_MESSAGE_BYTES - 1 }), fc.nat({ max: 7 }));
  const flips = fc.uniqueArray(position, {
    minLength: 1,
    maxLength: 8,
    selector: ([byte, bit]) => byte * 8 + bit,
  });
  const mutation: fc.Arbitrary<Mutation> = options.sameSize
    ? flips.map((bits) => ({ type: "flip", bits }))
    : fc.oneof(
        flips.map((bits): Mutation => ({ type: "flip", bits })),
        fc.nat({ max: CONTROL_MESSAGE_BYTES - 1 }).map((length): Mutation => ({ type: "truncate", length })),
        fc
          .array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 64 })
          .map((extra): Mutation => ({ type: "extend", extra })),
        fc
          .tuple(fc.integer({ min: 1, max: CONTROL_MESSAGE_BYTES - 1 }), position)
          .map(([length, bit]): Mutation => ({ type: "truncate-flip", length, bit })),
      );
  return fc.oneof(
    fc.record({ case: fc.constant("mutated" as const), signer, counterStep, mutation }),
    fc.record({
      case: fc.constant("outsider" as const),
      claimed: fc.oneof(signer, fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)),
      counterStep,
    }),
    fc.tuple(signer, fc.nat({ max: signerCount - 2 }), counterStep).map(([s, k, step]) => ({
      case: "impostor" as const,
      signer: s,
      claimed: (s + 1 + k) % signerCount,
      counterStep: step,
    })),
    fc.record({ case: fc.constant("replayed" as const), signer, counterBack: fc.nat({ max: 10_000_000 }) }),
    fc.record({
      case: fc.constant("expired" as const),
      signer,
      counterStep,
      agoMs: fc.integer({ min: MARGIN_MS, max: 60 * DAY_MS }),
      lifeMs: fc.integer({ min: 1, max: MAX_CONTROL_LIFETIME_MS }),
    }),
    fc.oneof(
      fc.record({
        case: fc.constant("future" as const),
        signer,
        issuedAheadMs: fc.integer({ min: MAX_CONTROL_CLOCK_SKEW_MS + MARGIN_MS, max: 365 * DAY_MS }),
        counterAheadMs: fc.integer({ min: 0, max: 365 * DAY_MS }),
      }),
      fc.record({
        case: fc.constant("future" as const),
        signer,
        issuedAheadMs: fc.integer({ min: -DAY_MS, max: 0 }),
        counterAheadMs: fc.integer({ min: MAX_CONTROL_CLOCK_SKEW_MS + MARGIN_MS, max: 365 * DAY_MS }),
      }),
    ),
    fc.record({ case: fc.constant("other-target" as const), signer, counterStep }),
    fc.record({ case: fc.constant("other-device" as const), signer, counterStep }),
    fc.record({ case: fc.constant("other-campaign" as const), signer, counterStep }),
  );
}

/** The bytes of a described wipe, sealed now. */
export function buildWipe(ctx: WipeContext, spec: BadWipe): Uint8Array {
  const now = ctx.now();
  const signerAt = (index: number) => {
    const s = ctx.signers[index];
    if (s === undefined) throw new Error(`no roster signer #${index}`);
    return s;
  };
  // A fresh counter: above the last accepted one (and at most a minute past it: far below the
  // device's clock + MAX_CONTROL_CLOCK_SKEW_MS).
  const fresh = (index: number, step: number) => signerAt(index).lastCounter + step;
  const payload = (
    from: string,
    counter: number,
    overrides: Partial<{ campaignId: string; to: string; issuedAt: number; expiresAt: number }> = {},
  ): ControlPayload => {
    const issuedAt = overrides.issuedAt ?? now - 1_000;
    const expiresAt = overrides.expiresAt ?? now + 7 * DAY_MS;
    return {
      kind: CONTROL_KIND.wipe,
      v: CONTROL_VERSION,
      campaignId: overrides.campaignId ?? ctx.campaignId,
      to: overrides.to ?? ctx.me.pseudonym,
      from,
      counter,
      issuedAt,
      expiresAt,
      ackBy: expiresAt,
    };
  };
  const seal = (
    signer: RosterSigner,
    body: ControlPayload,
    to: { pseudonym: string; encryptionKey: Uint8Array } = ctx.me,
  ): Uint8Array => sealControl({ campaignId: body.campaignId, to, signer, payload: body }).message;

  switch (spec.case) {
    case "valid": {
      const s = signerAt(spec.signer);
      return seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep)));
    }
    case "mutated": {
      const s = signerAt(spec.signer);
      return mutate(seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep))), spec.mutation);
    }
    case "outsider": {
      const claimed = typeof spec.claimed === "number" ? signerAt(spec.claimed).deviceId : spec.claimed;
      const counter = Math.max(...ctx.signers.map((s) => s.lastCounter)) + spec.counterStep;
      return seal({ deviceId: claimed, signing: ctx.outsider }, payload(claimed, counter));
    }
    case "impostor": {
      const signing = signerAt(spec.signer).signing;
      const claimed = signerAt(spec.claimed).deviceId;
      return seal({ deviceId: claimed, signing }, payload(claimed, fresh(spec.claimed, spec.counterStep)));
    }
    case "replayed": {
      const s = signerAt(spec.signer);
      const counter = Math.max(1, s.lastCounter - spec.counterBack);
      return seal(s, payload(s.deviceId, counter));
    }
    case "expired": {
      const s = signerAt(spec.signer);
      const expiresAt = now - spec.agoMs;
      const issuedAt = expiresAt - spec.lifeMs;
      return seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep), { issuedAt, expiresAt }));
    }
    case "future": {
      const s = signerAt(spec.signer);
      const issuedAt = now + spec.issuedAheadMs;
      const counter = Math.max(s.lastCounter + 1, now + spec.counterAheadMs);
      return seal(s, payload(s.deviceId, counter, { issuedAt, expiresAt: issuedAt + 7 * DAY_MS }));
    }
    case "other-target": {
      const s = signerAt(spec.signer);
      const to = { pseudonym: ctx.other.pseudonym, encryptionKey: ctx.me.encryptionKey };
      return seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep), { to: to.pseudonym }), to);
    }
    case "other-device": {
      const s = signerAt(spec.signer);
      return seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep), { to: ctx.other.pseudonym }), ctx.other);
    }
    case "other-campaign": {
      const s = signerAt(spec.signer);
      const campaignId = toBase64url(randomBytes(16));
      return seal(s, payload(s.deviceId, fresh(spec.signer, spec.counterStep), { campaignId }));
    }
  }
}

export function mutate(message: Uint8Array, mutation: Mutation): Uint8Array {
  switch (mutation.type) {
    case "flip": {
      const out = message.slice();
      for (const [byte, bit] of mutation.bits) out[byte] = (out[byte] ?? 0) ^ (1 << bit);
      return out;
    }
    case "truncate":
      return message.slice(0, mutation.length);
    case "extend":
      return Uint8Array.from([...message, ...mutation.extra]);
    case "truncate-flip": {
      const out = message.slice(0, mutation.length);
      const [byte, bit] = mutation.bit;
      const at = byte % out.length;
      out[at] = (out[at] ?? 0) ^ (1 << bit);
      return out;
    }
  }
}
