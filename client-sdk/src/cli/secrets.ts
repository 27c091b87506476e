// Secrets (PINs, passphrases, tokens) come from a file, an environment variable or a prompt on a
// terminal — never from a command-line argument.
import { readFile } from "node:fs/promises";
import { CliError } from "./cli-error.js";
import { EXIT } from "./exit-codes.js";

export interface SecretSource {
  /** Path given with --x-file, if any. */
  readonly file: string | undefined;
  /** Name of the environment variable to read, e.g. TESTIGO_PIN. */
  readonly envVar: string;
  /** What to ask on a terminal, e.g. "PIN". */
  readonly prompt: string;
  /** The flag to mention in error messages, e.g. --pin-file. */
  readonly fileFlag: string;
}

export interface SecretIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: NodeJS.ReadStream;
  readonly stderr: NodeJS.WriteStream;
}

export async function readSecret(source: SecretSource, io: SecretIo): Promise<string> {
  if (source.file !== undefined) {
    let text: string;
    try {
      text = await readFile(source.file, "utf8");
    } catch {
      throw new CliError(
        "SECRET_FILE_UNREADABLE",
        `cannot read ${source.fileFlag} ${source.file}: check the path and its permissions`,
        EXIT.usage,
      );
    }
    // One trailing newline is the file's, not the secret's.
    return text.replace(/\r?\n$/, "");
  }
  const fromEnv = io.env[source.envVar];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (io.stdin.isTTY === true && io.stderr.isTTY === true) return promptHidden(`${source.prompt}: `, io);
  throw new CliError(
    "SECRET_MISSING",
    `no ${source.prompt} given: use ${source.fileFlag} FILE or set ${source.envVar} (no terminal to ask on)`,
    EXIT.usage,
  );
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string, io: SecretIo): Promise<string> {
  const { stdin, stderr } = io;
  stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = "";
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding("utf8");
    const finish = (error?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      stderr.write("\n");
      if (error === undefined) resolve(value);
      else reject(error);
    };
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === "\r" || char === "\n") {
          finish();
          return;
        }
        if (char === "\u0003") {
          finish(new CliError("INTERRUPTED", "interrupted", EXIT.failure));
          return;
        }
        if (char === "\u007f" || char === "\b") value = [...value].slice(0, -1).join("");
        else value += char;
      }
    };
    stdin.on("data", onData);
  });
}
