#!/usr/bin/env node
// The `testigo` command. The TypeScript sources compile to dist/ (`npm ci` runs the build).
import "../dist/cli/bin.js";
