// `coordinator invite --qr DIR`: one PNG QR code per invite code, for printing or showing on a
// screen to a volunteer's phone. An invite code is a one-time secret: the folder is created
// owner-only and each file is written owner-only, named by its position, never by the code.
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import QRCode from "qrcode";

/** Medium error correction and a 4-module quiet zone: scannable off paper and off a screen. */
export const INVITE_QR_OPTIONS = { type: "png", errorCorrectionLevel: "M", margin: 4, scale: 6 } as const;

/** The PNG of one invite code. */
export function inviteQrPng(code: string): Promise<Buffer> {
  return QRCode.toBuffer(code, INVITE_QR_OPTIONS);
}

/** Writes DIR/invite-001.png, … (one per code, in order); returns their paths. */
export async function writeInviteQrCodes(dir: string, codes: readonly string[]): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const width = Math.max(3, String(codes.length).length);
  const paths: string[] = [];
  for (const [index, code] of codes.entries()) {
    const path = join(dir, `invite-${String(index + 1).padStart(width, "0")}.png`);
    const handle = await open(path, "w", 0o600);
    try {
      await handle.writeFile(await inviteQrPng(code));
      await handle.sync();
    } finally {
      await handle.close();
    }
    paths.push(path);
  }
  return paths;
}
