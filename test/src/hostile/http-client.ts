// Raw HTTP over loopback for the hostile tests: exact control of headers, Content-Length versus
// chunked bodies and trickled bytes, which fetch() does not give.
import { request } from "node:http";
import { connect, type Socket } from "node:net";

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** One request; `chunks` are written one by one (chunked encoding unless a content-length is set). */
export function send(
  port: number,
  options: {
    method: string;
    path: string;
    headers?: Readonly<Record<string, string>>;
    chunks?: readonly (string | Buffer)[];
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: options.method,
        path: options.path,
        headers: { ...options.headers },
        agent: false,
      },
      (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on("data", (part: Buffer) => parts.push(part));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    // The relay may answer (413) and close before the whole body is written: that is not an error.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end();
  });
}

/**
 * What the server answers to raw bytes (e.g. headers too large): the status line, or with `whole`
 * everything until the server closes or 2 s of silence; then the socket is closed.
 */
export function rawExchange(port: number, bytes: string | Buffer, whole = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      socket.destroy();
      resolve(text);
    };
    socket.on("data", (part: Buffer) => {
      text += part.toString("latin1");
      if (!whole && text.includes("\r\n")) done();
      clearTimeout(quiet);
      quiet = setTimeout(done, 2_000);
    });
    socket.on("error", (err) => (text.length > 0 ? done() : reject(err)));
    socket.on("close", done);
    socket.write(bytes);
  });
}

export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** p-th percentile (0..100) of the values, by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
