/**
 * How long `tokenhot-batch report` takes over a million ledger lines, and its peak RSS.
 *
 *   npm run bench:report                 # 1,000,000 lines, --by model,day,batch,tag --format html
 *   npx tsx bench/report-1m.ts 200000    # another size
 *
 * What runs: the CLI as users run it, compiled (`tsc -p tsconfig.build.json` first, then
 * `node bin/tokenhot-batch.js report ...` as a child process), so neither tsx nor this script's
 * own memory is in the figures. The report groups by every key (tags fan a line out to several
 * groups) and renders HTML, the heaviest combination, into a file.
 *
 * Time: wall clock from spawn to exit, Node's start and module loading included; the best of
 * BENCH_RUNS runs (default 3). Peak RSS: the child's own `process.resourceUsage().maxRSS`,
 * written by a preloaded hook as it exits (the kernel's high-water mark for that process;
 * `/usr/bin/time` is not everywhere); the highest of the runs. Each run's wall and CPU time and
 * the load average go to stderr, since other work on the machine shows in the wall time.
 *
 * The ledger is made once under `.bench/ledger-<lines>` (see make-ledger.ts) and reused. Only the
 * result line goes to stdout; progress goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeLedger } from './make-ledger.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGET_SECONDS = 10;
const TARGET_MB = 200;
/** Preloaded into the child: reports its peak RSS (KiB) and CPU time (µs) on stderr as it exits. */
const PEAK_RSS_HOOK =
  "data:text/javascript,process.on('exit',()=>{const u=process.resourceUsage();process.stderr.write('peak-rss-kib='+u.maxRSS+' cpu-us='+(u.userCPUTime+u.systemCPUTime)+'\\n')})";
/** Best of this many runs for the time (a busy machine only ever makes a run slower); highest peak RSS. */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const lines = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(lines) || lines < 1) throw new Error(`lines: "${process.argv[2]}" is not a positive whole number`);

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Bumped when make-ledger.ts writes other lines, so a ledger made by an older one is made again. */
const LEDGER_VERSION = 2;

async function ensureLedger(outDir: string): Promise<void> {
  const marker = join(outDir, 'lines.txt');
  const made = existsSync(marker) ? (await readFile(marker, 'utf8')).trim() : '';
  if (made === `${lines} v${LEDGER_VERSION}`) return;
  log(`writing ${lines.toLocaleString('en-US')} ledger lines to ${outDir} ...`);
  await makeLedger(lines, outDir);
  await writeFile(marker, `${lines} v${LEDGER_VERSION}\n`);
}

function build(): void {
  log('building (tsc -p tsconfig.build.json) ...');
  const result = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error('the build failed');
}

async function runReport(outDir: string, output: string): Promise<{ seconds: number; peakMb: number; cpuSeconds: number }> {
  const args = ['--import', PEAK_RSS_HOOK, 'bin/tokenhot-batch.js', 'report', '--out', outDir, '--by', 'model,day,batch,tag', '--format', 'html', '--output', output];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const seconds = (performance.now() - started) / 1000;
  const usage = stderr.match(/peak-rss-kib=(\d+) cpu-us=(\d+)/);
  if (code !== 0 || !usage) throw new Error(`the report failed (exit ${code}):\n${stderr}`);
  return { seconds, peakMb: Number(usage[1]) / 1024, cpuSeconds: Number(usage[2]) / 1e6 };
}

const outDir = join(ROOT, '.bench', `ledger-${lines}`);
build();
await ensureLedger(outDir);
const scratch = await mkdtemp(join(tmpdir(), 'tokenhot-bench-'));
try {
  let seconds = Infinity;
  let peakMb = 0;
  for (let run = 1; run <= RUNS; run += 1) {
    const result = await runReport(outDir, join(scratch, 'report.html'));
    log(`run ${run}/${RUNS}: ${result.seconds.toFixed(1)} s wall, ${result.cpuSeconds.toFixed(1)} s CPU, peak RSS ${Math.round(result.peakMb)} MB (load average ${loadavg()[0]!.toFixed(1)})`);
    seconds = Math.min(seconds, result.seconds);
    peakMb = Math.max(peakMb, result.peakMb);
  }
  process.stdout.write(
    `report over ${lines.toLocaleString('en-US')} ledger lines: ${seconds.toFixed(1)} s, peak RSS ${Math.round(peakMb)} MB (target < ${TARGET_SECONDS} s, < ${TARGET_MB} MB)\n`,
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
