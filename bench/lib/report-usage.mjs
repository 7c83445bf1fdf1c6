// Preloaded into a measured process (`node --import ./bench/lib/report-usage.mjs ...`): at exit it
// writes the process's peak resident set size and CPU time to $BENCH_USAGE_FILE as JSON
// ({ "maxRssKb", "cpuMs" }). Plain JavaScript so that measuring loads no TypeScript loader into
// the process measured. With BENCH_USAGE_SAMPLE_MS it also samples `process.memoryUsage()` that
// often and reports the highest of each part (`peaksKb`: heapTotal, heapUsed, external,
// arrayBuffers, rss): where a peak RSS comes from (the JavaScript heap, buffers, or neither:
// native memory such as malloc's arenas).
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_USAGE_FILE;
const sampleMs = Number(process.env.BENCH_USAGE_SAMPLE_MS ?? 0);
const peaks = {};

function sample() {
  for (const [part, bytes] of Object.entries(process.memoryUsage())) peaks[part] = Math.max(peaks[part] ?? 0, Math.round(bytes / 1024));
}

if (file) {
  if (sampleMs > 0) setInterval(sample, sampleMs).unref();
  process.on('exit', () => {
    const usage = process.resourceUsage();
    if (sampleMs > 0) sample();
    writeFileSync(file, JSON.stringify({ maxRssKb: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, ...(sampleMs > 0 ? { peaksKb: peaks } : {}) }));
  });
}
