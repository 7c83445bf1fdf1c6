/** Entry for running from source (`node --import tsx src/cli/bin.ts ...`); the tests spawn it compiled by test/setup/cli-build.ts. */
import { main } from './program.js';

process.exit(await main());
