/** The URLs a batch notifies: `--notify` (repeatable), else a job definition's `notify:`. */
import { UsageError } from '../core/errors.js';

/** Checked (http or https), each once, in the order given. */
export function checkNotifyUrls(urls: readonly string[], where = '--notify'): string[] {
  for (const url of urls) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new UsageError(`${where}: "${url}" is not a URL (give the receiver's full http(s) URL)`);
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`${where}: "${url}" is not an http(s) URL`);
  }
  return [...new Set(urls)];
}

/** `--notify` given replaces the job's `notify:`, as every flag wins over the job's value. */
export function notifyUrlsOf(flagUrls: readonly string[] | undefined, jobUrls: readonly string[] | undefined): string[] {
  return checkNotifyUrls(flagUrls && flagUrls.length > 0 ? flagUrls : (jobUrls ?? []), flagUrls && flagUrls.length > 0 ? '--notify' : 'notify');
}
