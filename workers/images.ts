/**
 * Entry point of an images worker process (the docker-compose `worker` service):
 * `node dist/workers/images.js [work flags]`, configured from the environment like `tokenhot-batch work`.
 */
import { main } from '../src/cli/program.js';

process.exit(await main([process.argv[0]!, 'tokenhot-batch', 'work', ...process.argv.slice(2)]));
