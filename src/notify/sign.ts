/**
 * Signatures as Stripe makes them: `Tokenhot-Signature: t=<unix seconds>,v1=<hex>`, where the hex
 * is HMAC-SHA256(secret, `<t>.<body>`). The timestamp inside the signed text lets a receiver
 * refuse an old request replayed (`toleranceSec`); the body must be the bytes received, before
 * any JSON parsing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Tokenhot-Signature';
export const EVENT_ID_HEADER = 'Tokenhot-Event-Id';
export const USER_AGENT = 'tokenhot-batch';

/** The hex HMAC-SHA256 of `<timestamp>.<body>`. */
export function signatureOf(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The headers of one delivery attempt, signed now. */
export function webhookHeaders(secret: string, eventId: string, body: string, nowMs = Date.now()): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'Content-Type': 'application/json',
    'User-Agent': USER_AGENT,
    [EVENT_ID_HEADER]: eventId,
    [SIGNATURE_HEADER]: `t=${timestamp},v1=${signatureOf(secret, timestamp, body)}`,
  };
}

/**
 * For receivers: true when `header` (the `Tokenhot-Signature` value) signs `body` with `secret`
 * and its timestamp is within `toleranceSec` of now. Any `v1` may match (Stripe's form allows
 * several, e.g. while a secret is rotated). Compared in constant time.
 */
export function verifySignature(secret: string, header: string | undefined, body: string | Buffer, toleranceSec = 300, nowMs = Date.now()): boolean {
  if (!header) return false;
  const parts = header.split(',').map((part) => part.trim().split('='));
  const timestamp = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isInteger(timestamp) || Math.abs(nowMs / 1000 - timestamp) > toleranceSec) return false;
  const expected = Buffer.from(signatureOf(secret, timestamp, body), 'hex');
  return parts.some(([key, value]) => {
    if (key !== 'v1' || !value || !/^[0-9a-f]+$/i.test(value)) return false;
    const given = Buffer.from(value, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
