/** A reference written as an http(s) link rather than a path: a photo fetched into the photo cache. */
export function isPhotoUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}
