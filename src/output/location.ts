/**
 * Where outputs go, as `--out` / `TOKENHOT_OUT_DIR` says: a local folder (the default), or a
 * bucket on S3-compatible storage as `s3://bucket/prefix`.
 *
 * A bucket's outputs still pass through the local disk: images are received into temporary files,
 * and the ledger is appended and flushed locally, in the spool folder of this machine (see
 * `spoolDirOf`). Nothing here loads the AWS SDK.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface FolderLocation {
  kind: 'folder';
  /** The folder, absolute. */
  path: string;
}

export interface BucketLocation {
  kind: 'bucket';
  bucket: string;
  /** Key prefix without a trailing `/`; empty for the bucket's top. */
  prefix: string;
  /** `s3://bucket/prefix`, as messages name it. */
  url: string;
}

export type OutputLocation = FolderLocation | BucketLocation;

const BUCKET_URL = /^s3:\/\//i;
const OTHER_URL = /^[a-z][a-z0-9+.-]*:\/\//i;
/** S3's rule for new buckets, which R2, MinIO and GCS's interoperability API share. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Prefix parts become spool folder names: the same safe names as batch parts. */
const PREFIX_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;

export function isBucketUrl(out: string): boolean {
  return BUCKET_URL.test(out);
}

/** What is wrong with an output location as given, or undefined when it can be used. */
export function checkOutputLocation(out: string): string | undefined {
  if (!isBucketUrl(out)) {
    return OTHER_URL.test(out) ? `output "${out}": only s3:// URLs are supported (for GCS, R2 or MinIO, use s3:// with AWS_ENDPOINT_URL)` : undefined;
  }
  const [bucket = '', ...parts] = out.slice('s3://'.length).split('/');
  if (!BUCKET_NAME.test(bucket)) return `output "${out}": "${bucket}" is not a bucket name (3 to 63 lowercase letters, digits, "." and "-")`;
  const prefix = parts.join('/').replace(/\/+$/, '');
  if (prefix === '') return undefined;
  if (prefix.split('/').some((part) => !PREFIX_PART.test(part) || part.includes('..'))) {
    return `output "${out}": the prefix "${prefix}" must be made of letters, digits, ".", "_" and "-" (parts separated by "/")`;
  }
  return undefined;
}

/** The location of an output as given (`checkOutputLocation` first: this throws on a bad one). */
export function outputLocation(out: string): OutputLocation {
  const problem = checkOutputLocation(out);
  if (problem) throw new Error(problem);
  if (!isBucketUrl(out)) return { kind: 'folder', path: resolve(out) };
  const [bucket = '', ...parts] = out.slice('s3://'.length).split('/');
  const prefix = parts.join('/').replace(/\/+$/, '');
  return { kind: 'bucket', bucket, prefix, url: `s3://${bucket}${prefix ? `/${prefix}` : ''}` };
}

/** `s3://bucket/prefix` without a trailing `/`, or the path as given. */
export function normalizeOutput(out: string): string {
  const location = isBucketUrl(out) ? outputLocation(out) : undefined;
  return location?.kind === 'bucket' ? location.url : out;
}

/** The same output named so that any process reads it alike: a bucket's URL, or the folder's absolute path. */
export function absoluteOutput(out: string): string {
  const location = outputLocation(out);
  return location.kind === 'bucket' ? location.url : location.path;
}

/**
 * This machine's spool folder of a bucket output: `TOKENHOT_SPOOL_DIR`, else the user's state
 * folder (`$XDG_STATE_HOME`, `~/.local/state`), then `tokenhot-batch/spool/<bucket>/<prefix>`.
 * Not os.tmpdir(): /tmp is memory on many systems (Debian 13, Fedora, Arch) and is emptied at a
 * reboot, and the spool holds ledger lines not yet shipped, which must outlive a power cut as the
 * local ledger does. Per bucket and prefix, so that one output's segments never ship to another.
 */
export function spoolDirOf(location: BucketLocation, env: NodeJS.ProcessEnv = process.env): string {
  return join(spoolRoot(env), location.bucket, ...(location.prefix ? location.prefix.split('/') : []));
}

/** The folder under which this machine's spools are, one per bucket and prefix (see `spoolDirOf`). */
export function spoolRoot(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.TOKENHOT_SPOOL_DIR?.trim();
  return given ? resolve(given) : join(env.XDG_STATE_HOME?.trim() || join(homedir(), '.local', 'state'), 'tokenhot-batch', 'spool');
}

/**
 * The local folder that stands for an output on this machine: the output folder itself, or a
 * bucket's spool folder. For what stays local whatever the output (caches, logs of this machine).
 */
export function localDirOf(out: string, env: NodeJS.ProcessEnv = process.env): string {
  const location = outputLocation(out);
  return location.kind === 'folder' ? location.path : spoolDirOf(location, env);
}
