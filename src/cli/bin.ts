/** Entry for running from source (`node --import tsx src/bin.ts ...`), as the tests do. */
import { main } from './program.js';

process.exit(await main());
