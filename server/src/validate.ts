// The boundary check: every body, path parameter and query goes through safeParse here.
import type { z } from "zod";
import { errors } from "./errors.js";

/** Parses `value` with `schema`, or throws MALFORMED_REQUEST naming the bad fields (never their values). */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : what}: ${issue.message}`)
    .join("; ");
  throw errors.malformed(`invalid ${what} (${fields})`);
}

/** An octet-stream body as bytes, or MALFORMED_REQUEST. */
export function bodyBytes(body: unknown): Uint8Array {
  if (!(body instanceof Uint8Array)) throw errors.malformed("the body must be application/octet-stream bytes");
  return body;
}
