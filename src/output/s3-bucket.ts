/**
 * Finished files in a bucket on S3-compatible storage (AWS S3, R2, MinIO, GCS's S3 interface),
 * named `<prefix>/<name>`: the object keys are the folder layout.
 *
 * Configured as AWS tools are: `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (another endpoint,
 * addressed path-style: `http://host/bucket/key`, which every S3-compatible server takes),
 * `AWS_REGION` (or `AWS_DEFAULT_REGION`, or the profile's; us-east-1 when none says), credentials
 * from the SDK's default chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, SSO,
 * container and instance roles).
 *
 * The SDK (125 ms to load) is loaded at the first call, so that a command that never touches a
 * bucket never loads it.
 */
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { CallError, UsageError } from '../core/errors.js';
import type { BucketLocation } from './location.js';
import type { OutputFiles } from './output-files.js';

/**
 * Files from this size up go in a multipart upload of 8 MB parts, smaller ones in one PutObject;
 * either way each request streams its bytes from the file with their length, so an upload holds a
 * socket's buffer, not an image. Not lib-storage's Upload: it gathers each part whole in memory
 * from the stream it is given (and a file under one part whole, for a PutObject), and 32 uploads
 * of 15 MB images at once took a `run` from 188 MB to 898 MB peak RSS.
 */
export const MULTIPART_FROM = 16 * 1024 * 1024;
const PART_SIZE = 8 * 1024 * 1024;
/** Tries of one upload: the SDK cannot send a consumed file stream again, so puts are retried here. */
const PUT_TRIES = 4;

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
  png: 'image/png',
  jpg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
  html: 'text/html; charset=utf-8',
};

function contentTypeOf(name: string): string {
  return CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1).toLowerCase()] ?? 'application/octet-stream';
}

type Sdk = typeof import('@aws-sdk/client-s3');

interface Clients {
  sdk: Sdk;
  /** For every call but streamed puts: the SDK's own retries. */
  client: S3Client;
  /** For streamed puts: one try each, retried here with a new file stream. */
  putClient: S3Client;
  /**
   * For presigned GETs: with the SDK's default checksums a presigned GetObject URL carries an
   * `x-amz-checksum-crc32` of the empty request body and `x-amz-checksum-mode`, which a browser
   * fetching an image has no use for: the URL is kept to what every S3-compatible server takes.
   */
  presignClient: S3Client;
}

/** The endpoint the environment names for S3, if any (AWS's names: the S3 one first). */
export function endpointOf(env: NodeJS.ProcessEnv): string | undefined {
  return env.AWS_ENDPOINT_URL_S3?.trim() || env.AWS_ENDPOINT_URL?.trim() || undefined;
}

async function openClients(env: NodeJS.ProcessEnv): Promise<Clients> {
  // The SDK warns on every start that its releases after January 2027 will want Node 22; this
  // package runs on Node 20 with the release in its lockfile, so the warning says nothing to a user.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const endpoint = endpointOf(env);
  const region = await regionOf(sdk, env);
  const options = {
    region,
    ...credentialsOf(env),
    ...(endpoint
      ? {
          endpoint,
          forcePathStyle: true,
          // Checksums the SDK adds by default (CRC32 trailers in aws-chunked bodies) are not taken
          // by every S3-compatible server; asked for only where an operation needs them, unless
          // the environment says otherwise (AWS_REQUEST_CHECKSUM_CALCULATION, as AWS tools read it).
          ...(env.AWS_REQUEST_CHECKSUM_CALCULATION ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED' as const }),
          ...(env.AWS_RESPONSE_CHECKSUM_VALIDATION ? {} : { responseChecksumValidation: 'WHEN_REQUIRED' as const }),
        }
      : {}),
  };
  // The put client's failures are retried and said here; the SDK would also print one on the console.
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return {
    sdk,
    client: new sdk.S3Client(options),
    putClient: new sdk.S3Client({ ...options, maxAttempts: 1, logger: quiet }),
    presignClient: new sdk.S3Client({ ...options, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
  };
}

/**
 * Keys in the environment given (the default chain's first step, which reads process.env only:
 * a caller may give another environment); without them the SDK's chain (profiles, SSO, roles).
 */
function credentialsOf(env: NodeJS.ProcessEnv): { credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } } {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (!accessKeyId || !secretAccessKey) return {};
  const sessionToken = env.AWS_SESSION_TOKEN?.trim();
  return { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
}

/** AWS_REGION, AWS_DEFAULT_REGION, the profile's region (~/.aws/config), else us-east-1. */
async function regionOf(sdk: Sdk, env: NodeJS.ProcessEnv): Promise<string> {
  const named = env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim();
  if (named) return named;
  const probe = new sdk.S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return 'us-east-1';
  } finally {
    probe.destroy();
  }
}

/** Whether an SDK error says there is no such object (not: no such bucket, also a 404). */
function isMissing(error: unknown): boolean {
  return (error as { name?: string }).name === 'NoSuchKey';
}

/** An SDK error in words: S3's code and message (`NoSuchBucket: The specified bucket does not exist`). */
function describe(error: unknown): string {
  const { name, message } = error as Error;
  return name && name !== 'Error' && !message.startsWith(name) ? `${name}: ${message}` : message;
}

/** A server error, throttling or a connection that failed: worth another try. A 4xx is not. */
function isRetryable(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/**
 * A bucket that cannot be read or written (after the SDK's retries, or ours for uploads) stops a
 * run as a disk that cannot be written does: taking more rows would bill answers that cannot be
 * saved. Such errors are made here, where S3's answer is read.
 */
export class S3Bucket implements OutputFiles {
  private clients?: Promise<Clients>;

  constructor(
    readonly location: BucketLocation,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private open(): Promise<Clients> {
    this.clients ??= openClients(this.env).catch((error: unknown) => {
      this.clients = undefined;
      throw error;
    });
    return this.clients;
  }

  private failure(what: string, name: string, error: unknown): CallError {
    return new CallError('fatal', `cannot ${what} ${this.locate(name)}: ${describe(error)}`, { cause: error });
  }

  /**
   * Whether the bucket answers and takes these credentials: one listing of the prefix, before
   * any row is sent. A bad name, endpoint or key is a usage error (exit 2), said once.
   */
  async check(): Promise<void> {
    try {
      const { sdk, client } = await this.open();
      await client.send(new sdk.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.keyOf(''), MaxKeys: 1 }));
    } catch (error) {
      const endpoint = endpointOf(this.env);
      throw new UsageError(`cannot use the output bucket ${this.location.url}${endpoint ? ` at ${endpoint}` : ''}: ${describe(error)} (check the bucket name, AWS_ENDPOINT_URL, AWS_REGION and the credentials)`);
    }
  }

  keyOf(name: string): string {
    return this.location.prefix ? `${this.location.prefix}/${name}` : name;
  }

  locate(name: string): string {
    return `s3://${this.location.bucket}/${this.keyOf(name)}`;
  }

  async moveIn(localPath: string, name: string, contentType?: string): Promise<void> {
    await this.putFile(localPath, name, contentType);
    try {
      await unlink(localPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Uploads a whole local file as `name`, streamed from disk; the object appears only once whole. */
  async putFile(localPath: string, name: string, contentType = contentTypeOf(name)): Promise<void> {
    const { size } = await stat(localPath);
    for (let attempt = 1; ; attempt++) {
      try {
        if (size >= MULTIPART_FROM) await this.putInParts(localPath, size, name, contentType);
        else await this.putWhole(localPath, size, name, contentType);
        return;
      } catch (error) {
        // The file gone meanwhile (a ledger segment another process shipped): said as it is.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw error;
        if (attempt >= PUT_TRIES || !isRetryable(error)) throw this.failure('upload', name, error);
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  private async putWhole(localPath: string, size: number, name: string, contentType: string): Promise<void> {
    const { sdk, putClient } = await this.open();
    const body = createReadStream(localPath);
    try {
      await putClient.send(new sdk.PutObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(name), Body: body, ContentLength: size, ContentType: contentType }));
    } finally {
      body.destroy();
    }
  }

  /**
   * A multipart upload, each part streamed from its range of the file; a failed one is aborted,
   * so no parts are left stored (and billed). With the SDK's default checksums (AWS itself) the
   * upload is made with CRC32 checksums, as lib-storage does, and each part's goes to the end.
   */
  private async putInParts(localPath: string, size: number, name: string, contentType: string): Promise<void> {
    const { sdk, client, putClient } = await this.open();
    const target = { Bucket: this.location.bucket, Key: this.keyOf(name) };
    const checksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ ...target, ContentType: contentType, ...(checksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}) }));
    try {
      const parts: { PartNumber: number; ETag?: string; ChecksumCRC32?: string }[] = [];
      for (let start = 0, number = 1; start < size; start += PART_SIZE, number++) {
        const end = Math.min(size, start + PART_SIZE);
        const body = createReadStream(localPath, { start, end: end - 1 });
        try {
          const part = await putClient.send(new sdk.UploadPartCommand({ ...target, UploadId, PartNumber: number, Body: body, ContentLength: end - start }));
          parts.push({ PartNumber: number, ETag: part.ETag, ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {}) });
        } finally {
          body.destroy();
        }
      }
      await client.send(new sdk.CompleteMultipartUploadCommand({ ...target, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (error) {
      await client.send(new sdk.AbortMultipartUploadCommand({ ...target, UploadId })).catch(() => undefined);
      throw error;
    }
  }

  async readText(name: string): Promise<string | undefined> {
    const body = await this.readStream(name);
    if (!body) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  /** An object's bytes as they arrive, or undefined when there is no such object. */
  async readStream(name: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { sdk, client } = await this.open();
    try {
      const answer = await client.send(new sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(name) }));
      return answer.Body as AsyncIterable<Uint8Array> | undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure('read', name, error);
    }
  }

  /**
   * A URL that GETs the object for `seconds` without credentials (SigV4 query signing; AWS caps
   * it at 7 days). Made here, with no request to the bucket: the object need not exist.
   */
  async presignGet(name: string, seconds: number): Promise<string> {
    const { sdk, presignClient } = await this.open();
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    return getSignedUrl(presignClient, new sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(name) }), { expiresIn: seconds });
  }

  async remove(name: string): Promise<void> {
    const { sdk, client } = await this.open();
    // DeleteObject of a key that is not there succeeds.
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(name) })).catch((error: unknown) => {
      throw this.failure('remove', name, error);
    });
  }

  /** Copies an object server-side (no bytes through this process); false when the source is gone. */
  async copy(from: string, to: string): Promise<boolean> {
    const { sdk, client } = await this.open();
    try {
      await client.send(new sdk.CopyObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(to), CopySource: `${this.location.bucket}/${encodeURIComponent(this.keyOf(from)).replace(/%2F/g, '/')}` }));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw this.failure(`copy ${this.locate(from)} to`, to, error);
    }
  }

  async *listFolder(folder: string): AsyncGenerator<string> {
    const start = `${this.keyOf(folder)}/`;
    const { sdk, client } = await this.open();
    let token: string | undefined;
    do {
      const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: start, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) })).catch((error: unknown) => {
        throw this.failure('list', folder, error);
      });
      for (const object of page.Contents ?? []) if (object.Key) yield object.Key.slice(start.length);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  close(): void {
    const clients = this.clients;
    this.clients = undefined;
    void clients?.then(({ client, putClient, presignClient }) => {
      client.destroy();
      putClient.destroy();
      presignClient.destroy();
    }, () => undefined);
  }
}
