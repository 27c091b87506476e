// The `testigo` command: dispatches to a subcommand, prints errors people can act on, and maps
// them to documented exit codes (docs/cli-volunteer.md, docs/cli-coordinator.md). The only place that touches process.*.
import { parseFlags } from "./args.js";
import { CliError } from "./cli-error.js";
import type { CliContext, Command } from "./command.js";
import { COMMANDS } from "./commands.js";
import { EXIT } from "./exit-codes.js";

function overview(): string {
  const lines = ["usage: testigo <command> [flags]   (testigo <command> --help for details)", ""];
  for (const command of COMMANDS) lines.push(`  ${command.path.join(" ").padEnd(24)} ${command.summary}`);
  return `${lines.join("\n")}\n`;
}

function findCommand(argv: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
  for (const command of COMMANDS) {
    if (command.path.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(command.path.length) };
  }
  return undefined;
}

export async function runCli(context: CliContext): Promise<number> {
  const found = findCommand(context.argv);
  if (found === undefined) {
    const asked = context.argv.length === 0 || context.argv[0] === "--help" || context.argv[0] === "-h";
    (asked ? context.stdout : context.stderr).write(overview());
    return asked ? EXIT.ok : EXIT.usage;
  }
  const { command, rest } = found;
  const json = rest.includes("--json");
  try {
    const args = parseFlags(rest, command.flags);
    if (args.flags.help === true) {
      context.stdout.write(`usage: ${command.usage}\n\n${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run(args, context);
  } catch (error) {
    const cliError =
      error instanceof CliError
        ? error
        : new CliError("UNEXPECTED", `unexpected failure: ${error instanceof Error ? error.message : String(error)}`);
    if (json) {
      context.stdout.write(
        `${JSON.stringify({ ok: false, error: { code: cliError.code, message: cliError.message } })}\n`,
      );
    }
    context.stderr.write(`testigo: ${cliError.message}\n`);
    return cliError.exitCode;
  }
}
