/** Entry for running from source (`node --import tsx src/bin.ts ...`), as the tests do. */
import { main } from './cli.js';

process.exit(await main());
