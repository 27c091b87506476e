// Every `testigo` subcommand, in the order `testigo --help` lists them.
import type { Command } from "./command.js";
import { coordinatorCommands } from "./commands/coordinator.js";
import { relayCommand } from "./commands/relay.js";
import { volunteerCommands } from "./commands/volunteer.js";

export const COMMANDS: readonly Command[] = [relayCommand, ...coordinatorCommands, ...volunteerCommands];
