/**
 * A real S3-compatible server for the tests: s3rver in its own process, on a free loopback port,
 * keeping its objects in a temporary folder, with the buckets asked for. The tests reach it as a
 * user would, through the AWS SDK with `AWS_ENDPOINT_URL` (see `env`).
 *
 * The process runs with `--openssl-legacy-provider`: s3rver 3.7.1 makes ListObjectsV2
 * continuation tokens with DES, which OpenSSL 3 (Node 17 and later) only has in its legacy
 * provider; without it a listing of more keys than a page holds fails with a 500.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ROOT } from './root.js';

const SERVER = `
import S3rver from 's3rver';
const [directory, buckets] = process.argv.slice(1);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: JSON.parse(buckets).map((name) => ({ name })) });
const { port } = await server.run();
process.stdout.write('s3rver on http://127.0.0.1:' + port + '\\n');
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
`;

/** s3rver's fixed account. */
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

export interface S3Object {
  key: string;
  size: number;
}

export interface S3Server {
  endpoint: string;
  /** What a process needs to use the server: endpoint, region and credentials, as AWS tools read them. */
  env: Record<string, string>;
  client: S3Client;
  /** Every object under a prefix, keys in order. */
  objects(bucket: string, prefix?: string): Promise<S3Object[]>;
  read(bucket: string, key: string): Promise<Buffer>;
  stop(): Promise<void>;
}

export async function startS3Server(buckets: string[]): Promise<S3Server> {
  // The SDK's notice that its 2027 releases want Node 22 (the CLI turns it off the same way).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const directory = await mkdtemp(join(tmpdir(), 'thb-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--input-type=module', '-e', SERVER, directory, JSON.stringify(buckets)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const endpoint = await serverUrl(child);
  const env = { AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', ...CREDENTIALS };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDENTIALS.AWS_SECRET_ACCESS_KEY } });
  return {
    endpoint,
    env,
    client,
    async objects(bucket, prefix = '') {
      const objects: S3Object[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const object of page.Contents ?? []) objects.push({ key: object.Key!, size: object.Size ?? 0 });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return objects.sort((a, b) => (a.key < b.key ? -1 : 1));
    },
    async read(bucket, key) {
      const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await answer.Body!.transformToByteArray());
    },
    async stop() {
      client.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function serverUrl(child: ChildProcess): Promise<string> {
  let output = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = output.match(/s3rver on (http:\/\/[\d.:]+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}): ${output}`)));
  });
}
