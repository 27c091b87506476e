// Epoch-key publication: each coordinator device publishes its own signed epoch-key documents;
// anyone may fetch them (volunteers verify each against the device key in the signed roster).
import {
  API,
  campaignParams,
  type EpochKeysResponse,
  fromBase64url,
  fromUtf8,
  openEpochKey,
  putEpochKeysRequest,
  type SignedDocumentWire,
  signedDocumentWire,
  utf8,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { parseOr400 } from "../validate.js";

const storedDocuments = z.array(signedDocumentWire);

/** Bound on the devices whose parsed documents are remembered; the oldest goes first. */
const MAX_REMEMBERED_DEVICES = 10_000;

/**
 * The stored documents of each device, parsed and checked once per exact stored bytes: the
 * parse is a pure function of the bytes, so a device's documents are re-parsed only when the
 * bytes differ from the ones remembered (compared in full). Invalid bytes are not remembered.
 */
class ParsedDocuments {
  readonly #byDevice = new Map<string, { readonly bytes: Uint8Array; readonly documents: SignedDocumentWire[] }>();

  parse(campaignId: string, deviceId: string, bytes: Uint8Array): SignedDocumentWire[] | undefined {
    const key = `${campaignId}/${deviceId}`;
    const known = this.#byDevice.get(key);
    if (known !== undefined && Buffer.compare(known.bytes, bytes) === 0) return known.documents;
    const parsed = storedDocuments.safeParse(JSON.parse(fromUtf8(bytes)));
    if (!parsed.success) return undefined;
    // Frozen: every answer that shares it serializes the same documents.
    const documents = Object.freeze(parsed.data.map((doc) => Object.freeze(doc))) as SignedDocumentWire[];
    this.#byDevice.delete(key);
    if (this.#byDevice.size >= MAX_REMEMBERED_DEVICES) {
      const oldest = this.#byDevice.keys().next();
      if (oldest.done !== true) this.#byDevice.delete(oldest.value);
    }
    this.#byDevice.set(key, { bytes: new Uint8Array(bytes), documents });
    return documents;
  }
}

export function registerEpochKeyRoutes(app: FastifyInstance, ctx: RelayContext): void {
  const parsedDocuments = new ParsedDocuments();
  app.route({
    method: API.putEpochKeys.method,
    url: API.putEpochKeys.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request, reply) => {
      const session = sessionOf(request);
      const body = parseOr400(putEpochKeysRequest, request.body, "epoch keys");
      // Only documents this device signed for itself and this campaign: volunteers check the
      // same, but the relay should not serve what every client would refuse.
      const campaign = await ctx.store.getCampaign(session.campaignId);
      const signingKey = fromBase64url(campaign?.deviceSigningKeys[session.principal] ?? "");
      for (const doc of body.documents) {
        let ok = false;
        try {
          const key = openEpochKey(doc, signingKey ?? new Uint8Array());
          ok = key.campaignId === session.campaignId && key.deviceId === session.principal;
        } catch {
          ok = false;
        }
        if (!ok) {
          throw new RelayError(
            "EPOCH_KEY_INVALID",
            "every epoch-key document must be signed by the calling device, for itself and this campaign",
          );
        }
      }
      await ctx.store.putEpochKeys(session.campaignId, session.principal, utf8(JSON.stringify(body.documents)));
      return reply.code(204).send();
    },
  });

  app.route({
    method: API.getEpochKeys.method,
    url: API.getEpochKeys.path,
    handler: async (request): Promise<EpochKeysResponse> => {
      const { campaignId } = parseOr400(campaignParams, request.params, "path");
      const campaign = await ctx.store.getCampaign(campaignId);
      if (campaign === undefined) throw errors.notFound("campaign");
      const stored = await ctx.store.getEpochKeys(campaignId);
      const devices: Record<string, SignedDocumentWire[]> = {};
      // Only devices of the current roster: a removed device's keys must not be sealed to.
      for (const deviceId of campaign.deviceIds) {
        const bytes = stored[deviceId];
        if (bytes === undefined) continue;
        const documents = parsedDocuments.parse(campaignId, deviceId, bytes);
        if (documents !== undefined) devices[deviceId] = documents;
      }
      return { devices };
    },
  });
}
