/** Dates and times in a schedule's time zone: batch names and what `schedule list` shows. */

export interface ZonedParts {
  date: string;
  hour: string;
  minute: string;
  second: string;
}

export function zonedParts(at: string | number | Date, tz: string): ZonedParts {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(at));
  const part = (type: string): string => parts.find((p) => p.type === type)?.value ?? '00';
  return { date: `${part('year')}-${part('month')}-${part('day')}`, hour: part('hour'), minute: part('minute'), second: part('second') };
}

/** `2026-11-30 05:00:00 Europe/Berlin`: a time as a team reads it, in the schedule's zone. */
export function timeInZone(at: string | number | Date, tz: string): string {
  const { date, hour, minute, second } = zonedParts(at, tz);
  return `${date} ${hour}:${minute}:${second} ${tz}`;
}
