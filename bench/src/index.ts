// Every benchmark, in one run: `node bench/dist/index.js` (the root `npm run bench`).
import { runAndWriteCryptoBench } from "./crypto.js";

await runAndWriteCryptoBench();
