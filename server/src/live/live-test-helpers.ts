// Test helpers for the live inbox: a frame queue over a `ws` client socket and a submitter.
// Tests only.
import { API, apiPath, LIVE_INBOX_ROUTE, type LiveServerFrame, liveServerFrame } from "@testigo/protocol";
import type { WebSocket } from "ws";
import { makeEnvelope, octet, type Relay } from "../test-fixture.js";

export interface FrameQueue {
  /** The next frame the relay sent (rejects if the socket closes first). */
  next(): Promise<LiveServerFrame>;
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export function frameQueue(socket: WebSocket): FrameQueue {
  const frames: LiveServerFrame[] = [];
  const waiters: { resolve: (frame: LiveServerFrame) => void; reject: (err: Error) => void }[] = [];
  let ended: Error | undefined;
  socket.on("message", (data) => {
    const frame = liveServerFrame.parse(JSON.parse(String(data)));
    const waiter = waiters.shift();
    if (waiter === undefined) frames.push(frame);
    else waiter.resolve(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on("close", (code, reason) => {
      ended = new Error(`socket closed ${code} ${String(reason)}`);
      for (const waiter of waiters.splice(0)) waiter.reject(ended);
      resolve({ code, reason: String(reason) });
    });
  });
  return {
    next() {
      const frame = frames.shift();
      if (frame !== undefined) return Promise.resolve(frame);
      if (ended !== undefined) return Promise.reject(ended);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    closed,
  };
}

export function livePath(campaignId: string): string {
  return apiPath(LIVE_INBOX_ROUTE, { campaignId });
}

/** Submits one envelope as the volunteer; returns its message id. */
export async function submit(relay: Relay, campaignId: string, volunteerToken: string): Promise<string> {
  const { messageId, bytes } = makeEnvelope(campaignId);
  const res = await relay.app.inject({
    method: "POST",
    url: apiPath(API.submitEnvelope, { campaignId }),
    headers: octet(volunteerToken),
    payload: Buffer.from(bytes),
  });
  if (res.statusCode !== 202) throw new Error(`submit failed: ${res.statusCode} ${res.body}`);
  return messageId;
}

/** Collects `items` frames until `count` items arrived; other frames are returned too. */
export async function takeItems(
  queue: FrameQueue,
  count: number,
): Promise<{ cursors: string[]; messageIds: string[]; others: LiveServerFrame[] }> {
  const cursors: string[] = [];
  const messageIds: string[] = [];
  const others: LiveServerFrame[] = [];
  while (cursors.length < count) {
    const frame = await queue.next();
    if (frame.type !== "items") {
      others.push(frame);
      continue;
    }
    for (const item of frame.items) {
      cursors.push(item.cursor);
      if (item.kind === "envelope") messageIds.push(item.messageId);
    }
  }
  return { cursors, messageIds, others };
}
