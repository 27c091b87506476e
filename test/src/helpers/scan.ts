// The seized-relay scan: search raw bytes of files for secrets, in the forms they could take on
// disk or in a log — UTF-8, UTF-16 (LE and BE), base64 and base64url (at each of the three byte
// alignments), and lowercase/uppercase hex for binary secrets — and say where (file and offset).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface Needle {
  /** What it is, for the failure message ("status text marker #3"); never the secret itself. */
  readonly label: string;
  readonly bytes: Uint8Array;
  /** Text is also searched as UTF-16; binary secrets also as hex. */
  readonly kind: "text" | "binary";
}

export interface NeedleForm {
  readonly needle: Needle;
  readonly form: string;
  readonly bytes: Buffer;
}

export interface Finding {
  readonly file: string;
  readonly offset: number;
  readonly label: string;
  readonly form: string;
}

/** Shorter encoded fragments than this would match by chance in random-looking data. */
const MIN_ENCODED_CHARS = 12;

export function textNeedle(label: string, text: string): Needle {
  return { label, bytes: new Uint8Array(Buffer.from(text, "utf8")), kind: "text" };
}

export function binaryNeedle(label: string, bytes: Uint8Array): Needle {
  return { label, bytes, kind: "binary" };
}

/**
 * The characters of base64 (or base64url) that encode only `bytes`, whatever surrounds them,
 * when `bytes` starts `shift` bytes after a 3-byte boundary of the encoded stream.
 */
export function base64Fragment(bytes: Uint8Array, shift: 0 | 1 | 2, alphabet: "base64" | "base64url"): string {
  const encoded = Buffer.concat([Buffer.alloc(shift), Buffer.from(bytes)]).toString(alphabet);
  const start = Math.ceil((8 * shift) / 6);
  const end = Math.floor((8 * (shift + bytes.length)) / 6);
  return encoded.slice(start, end);
}

/** Every form of a needle that the scan looks for. */
export function formsOf(needle: Needle): NeedleForm[] {
  const raw = Buffer.from(needle.bytes);
  const forms: NeedleForm[] = [{ needle, form: "raw", bytes: raw }];
  if (needle.kind === "text") {
    const text = raw.toString("utf8");
    const le = Buffer.from(text, "utf16le");
    forms.push({ needle, form: "utf16le", bytes: le });
    forms.push({ needle, form: "utf16be", bytes: Buffer.from(le).swap16() });
  } else {
    forms.push({ needle, form: "hex", bytes: Buffer.from(raw.toString("hex"), "latin1") });
    forms.push({ needle, form: "HEX", bytes: Buffer.from(raw.toString("hex").toUpperCase(), "latin1") });
  }
  for (const alphabet of ["base64", "base64url"] as const) {
    for (const shift of [0, 1, 2] as const) {
      const fragment = base64Fragment(needle.bytes, shift, alphabet);
      if (fragment.length < MIN_ENCODED_CHARS) continue;
      // base64 and base64url agree on most fragments: search each distinct string once.
      if (forms.some((f) => f.bytes.equals(Buffer.from(fragment, "latin1")))) continue;
      forms.push({ needle, form: `${alphabet}@${shift}`, bytes: Buffer.from(fragment, "latin1") });
    }
  }
  return forms;
}

/** Every regular file under `root` (recursively); `root` itself if it is a file. */
export function filesUnder(root: string): string[] {
  const stat = statSync(root, { throwIfNoEntry: false });
  if (stat === undefined) return [];
  if (stat.isFile()) return [root];
  if (!stat.isDirectory()) return [];
  return readdirSync(root)
    .sort()
    .flatMap((name) => filesUnder(join(root, name)));
}

/** Searches every file for every form of every needle; one finding per (file, form, offset). */
export function scanFiles(files: readonly string[], needles: readonly Needle[]): Finding[] {
  const forms = needles.flatMap(formsOf);
  const findings: Finding[] = [];
  for (const file of files) {
    const content = readFileSync(file);
    for (const form of forms) {
      let offset = content.indexOf(form.bytes);
      while (offset !== -1) {
        findings.push({ file, offset, label: form.needle.label, form: form.form });
        offset = content.indexOf(form.bytes, offset + 1);
      }
    }
  }
  return findings;
}

/** A failure message naming up to `max` findings. */
export function describeFindings(findings: readonly Finding[], max = 30): string {
  const lines = findings.slice(0, max).map((f) => `  ${f.label} (${f.form}) in ${f.file} at offset ${f.offset}`);
  const more = findings.length > max ? `\n  … and ${findings.length - max} more` : "";
  return `${findings.length} secret(s) found:\n${lines.join("\n")}${more}`;
}
