// Preloaded into a measured process (`node --import ./bench/lib/report-usage.mjs ...`): at exit it
// writes the process's peak resident set size and CPU time to $BENCH_USAGE_FILE as JSON
// ({ "maxRssKb", "cpuMs" }). Plain JavaScript so that measuring loads no TypeScript loader into
// the process measured.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_USAGE_FILE;
if (file) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKb: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 }));
  });
}
