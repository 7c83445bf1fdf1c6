/**
 * The commands that need neither an endpoint nor the queue: `report` (the ledger), and the mock
 * endpoint with the demo that runs on it. Each command's module is loaded when it runs (see
 * program.ts).
 */
import { Option, type Command } from 'commander';
import { EXIT, helpText } from './help.js';
import { createLogger } from '../core/log.js';
// Text only (no server code): the mock's help lists its directives.
import { DIRECTIVE_HELP } from '../mock/directives.js';

/** `report`: the cost report from the ledger. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('cost report from the ledger')
    .option('--out <dir>', 'output folder whose ledger to read (env TOKENHOT_OUT_DIR)')
    .option('--batch <name>', 'only this batch (and its sub-batches)')
    .option('--product <id>', 'only this product (rows of a shot list, or of a CSV with a product column)')
    .option('--by <keys>', 'group by any of provider,model,day,batch,tag,product,shot (comma-separated)')
    .addOption(new Option('--format <format>', 'output format (html: one self-contained page with a chart)').choices(['table', 'json', 'csv', 'html']).default('table'))
    .option('--output <file>', 'write the report to this file instead of stdout')
    .option('--since <date>', 'from this day (YYYY-MM-DD, UTC)')
    .option('--until <date>', 'to this day, inclusive (YYYY-MM-DD, UTC)')
    .option('--prices <file>', 'price file (JSON or YAML) over the built-in prices')
    .option('--prefix <prefix>', 'queue key prefix, to note batches over budget when REDIS_URL is set')
    .addHelpText(
      'after',
      helpText({
        environment: ['TOKENHOT_OUT_DIR', 'TOKENHOT_PRICES', ['REDIS_URL', 'when set, the report notes batches over budget'], 'TOKENHOT_QUEUE_PREFIX'],
        exits: [EXIT.ok, [2, 'bad usage (a flag), or a price file or --output that cannot be used']],
      }),
    )
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/report.js')).reportCommand(flags);
    });
}

/** `mock-server`: a local endpoint of both API families. */
export function registerMockServerCommand(program: Command): void {
  program
    .command('mock-server')
    .description('a local endpoint of both API families (Gemini generateContent, OpenAI-style images) for dry runs and tests')
    .option('--port <port>', 'port (default 8787; 0 for any free port)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--api-key <key>', 'key the mock requires (default: TOKENHOT_API_KEY when set, else any)')
    .option('--latency-ms <ms>', 'delay before each answer')
    .option('--latency-jitter-ms <ms>', 'extra random delay, up to this much')
    .option('--payload <kind>', 'small (default) or real: image data as large as the real endpoint sends')
    .option('--rps <n>', "quota in requests per second; over it the mock answers 429 (Gemini's with RetryInfo, the images gateway's in Chinese)")
    .option('--burst <n>', 'requests allowed at once under the quota (default: rps)')
    .option('--fail-rate <p>', 'share of requests answered 503 at random, 0 to 1')
    .option('--request-log <file>', 'append one JSON line per request (what was billed, image hashes)')
    .option('--no-thought-images', 'leave out the interim thought images of Gemini 3 models')
    .option('--extra-model <id...>', 'also serve these model ids, as models newer than this version (no price in its table)')
    .option('--retire-model <id...>', 'answer these model ids 404 (model_not_found), as retired models are (e.g. dall-e-3)')
    .option('--link-ttl-ms <ms>', 'lifetime of image links of url answers (default: Seedream 24 h, GPT Image and DALL-E 1 h)')
    .addHelpText('after', `\nDirectives in a prompt ask for a behaviour:\n  ${DIRECTIVE_HELP.join('\n  ')}\n`)
    .addHelpText('after', helpText({ environment: [['TOKENHOT_API_KEY', 'the key the mock requires, unless --api-key (unset: any)']], exits: [[0, 'stopped by Ctrl-C or SIGTERM'], [2, 'bad usage, or the port is taken']] }))
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/mock-server.js')).mockServerCommand(flags);
    });
}

/** `demo`: the example catalog against a built-in mock. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the example catalog against a built-in mock: images, ledger and report in ./output/demo')
    .option('--out <dir>', 'where the demo writes (default ./output/demo; emptied first)')
    .option('--shopify', 'the Shopify example instead: a product feed, three shots a product from its photos, a manifest (jobs/shopify-nightly.yaml)')
    .option('--plain', 'plain progress lines instead of a bar')
    .addHelpText(
      'after',
      helpText({
        environment: [],
        exits: [
          [0, 'every row done'],
          [1, 'some rows failed'],
          [2, '--out holds files the demo did not make'],
        ],
      }),
    )
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/demo.js')).demoCommand(flags, createLogger('warn'));
    });
}
