// An aws_iam cloud-id built from a GetCallerIdentity request signed by the
// real AWS SDK for JavaScript v3 (`@aws-sdk/client-sts`, pinned in
// package.json), as a client based on it would send it. Used by
// tests/system/test_aws_iam.py; nothing is sent anywhere: the request
// handler captures the signed request and stops.
//
//   node aws_sdk_v3_cloud_id.mjs STS_URL
//
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN (optional). Prints the cloud-id (base64 of
// {sts_request_method, sts_request_url, sts_request_body,
// sts_request_headers}, each base64, headers as {name: [value]}).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts');

const url = process.argv[2];
if (!url) {
  console.error('usage: node aws_sdk_v3_cloud_id.mjs STS_URL');
  process.exit(2);
}
const credentials = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
};

class Captured extends Error {}
let signed;
const client = new STSClient({
  region: 'us-east-1',
  endpoint: url,
  credentials,
  maxAttempts: 1,
  requestHandler: {
    handle: async (request) => {
      signed = request;
      throw new Captured('captured');
    },
  },
});
try {
  await client.send(new GetCallerIdentityCommand({}));
} catch (e) {
  if (!(e instanceof Captured)) throw e;
}

const b64 = (s) => Buffer.from(s).toString('base64');
const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k, [String(v)]]));
const doc = {
  sts_request_method: signed.method,
  sts_request_url: b64(url),
  sts_request_body: b64(signed.body),
  sts_request_headers: b64(JSON.stringify(headers)),
};
process.stdout.write(b64(JSON.stringify(doc)));
