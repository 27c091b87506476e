// `testigo coordinator …` subcommands.
import type { Command } from "../command.js";
import { coordinatorFetch } from "./coordinator-fetch.js";
import { coordinatorInit } from "./coordinator-init.js";
import { coordinatorInvite } from "./coordinator-invite.js";
import { coordinatorAddDevice, coordinatorJoin } from "./coordinator-join.js";
import { coordinatorVolunteers } from "./coordinator-volunteers.js";
import { coordinatorWipe } from "./coordinator-wipe.js";

export const coordinatorCommands: readonly Command[] = [
  coordinatorInit,
  coordinatorInvite,
  coordinatorFetch,
  coordinatorVolunteers,
  coordinatorWipe,
  coordinatorJoin,
  coordinatorAddDevice,
];
