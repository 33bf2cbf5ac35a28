// Compatibility of the official npm `akeyless` SDK (pinned in package.json)
// with a real Coffer server. Run with `node --test` from this directory;
// the server binary is $COFFER_BIN (default <repo>/target/debug/coffer).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync, closeSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const akeyless = require('akeyless');

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');
const cofferBin = path.resolve(repoRoot, process.env.COFFER_BIN ?? 'target/debug/coffer');

let proc;
let workDir;
let baseUrl;
let admin; // { accessId, accessKey } of the bootstrap admin

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Start `coffer server --dev` on a free port and wait for /health and the
// bootstrap credentials banner.
before(async () => {
  workDir = mkdtempSync(path.join(tmpdir(), 'coffer-node-sdk-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const stdoutPath = path.join(workDir, 'stdout.log');
  const out = openSync(stdoutPath, 'a');
  const err = openSync(path.join(workDir, 'stderr.log'), 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COFFER_')));
  proc = spawn(cofferBin, ['server', '--dev', '--data-dir', path.join(workDir, 'data'),
    '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', out, err], cwd: workDir, env });
  closeSync(out);
  closeSync(err);
  // scripts/test.sh kills any PID listed here that outlives the run.
  if (process.env.COFFER_TEST_PIDFILE) appendFileSync(process.env.COFFER_TEST_PIDFILE, `${proc.pid}\n`);
  let exited = null;
  proc.on('exit', (code) => { exited = code; });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`coffer exited with ${exited}; see ${workDir}/stderr.log`);
    if (Date.now() > deadline) throw new Error(`coffer did not become healthy on ${baseUrl}`);
    try {
      const res = await fetch(`${baseUrl}/health`);
      const text = readFileSync(stdoutPath, 'utf8');
      const id = text.match(/access_id:\s+(p-\S+)/);
      const key = text.match(/access_key:\s+(\S+)/);
      if (res.status === 200 && id && key) {
        admin = { accessId: id[1], accessKey: key[1] };
        return;
      }
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
});

after(() => {
  if (proc && proc.exitCode === null) proc.kill('SIGTERM');
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function makeApi(base = '') {
  const client = new akeyless.ApiClient();
  client.basePath = baseUrl + base;
  return new akeyless.V2Api(client);
}

// The SDK rejects with its whole superagent response (hundreds of lines);
// turn it into a one-line error that says which call failed and why.
async function call(what, promise) {
  try {
    return await promise;
  } catch (err) {
    if (err && err.status !== undefined) {
      const e = new Error(`${what}: HTTP ${err.status} ${JSON.stringify(err.body)}`);
      e.status = err.status;
      throw e;
    }
    throw err;
  }
}

async function login(api, accessId, accessKey) {
  const out = await call('auth', api.auth(akeyless.Auth.constructFromObject({
    'access-id': accessId, 'access-key': accessKey, 'access-type': 'access_key',
  })));
  assert.match(out.token, /^t-/);
  assert.ok(out.expiration, 'auth returns a non-empty expiration');
  return out.token;
}

async function expectStatus(promise, status) {
  await assert.rejects(call('request', promise), (err) => {
    assert.equal(err.status, status, `expected HTTP ${status}: ${err.message}`);
    return true;
  });
}

for (const base of ['', '/api/v2']) {
  test(`static secrets and RBAC through the npm SDK (base "${base || '/'}")`, async () => {
    const api = makeApi(base);
    const token = await login(api, admin.accessId, admin.accessKey);
    const tag = Math.random().toString(36).slice(2, 10);
    const allowed = `/app/${tag}/api-key`;
    const forbidden = `/other/${tag}/api-key`;

    for (const name of [allowed, forbidden]) {
      const created = await call('createSecret', api.createSecret(akeyless.CreateSecret.constructFromObject({
        name, value: `node-value-${tag}`, token,
      })));
      assert.equal(created.name, name);
    }
    const got = await call('getSecretValue', api.getSecretValue(akeyless.GetSecretValue.constructFromObject({
      names: [allowed, forbidden], token,
    })));
    assert.deepEqual(Object.keys(got).sort(), [allowed, forbidden].sort());
    assert.equal(got[allowed], `node-value-${tag}`);

    // A second API-key identity that may only read /app/*.
    const am = await call('createAuthMethod', api.createAuthMethod(akeyless.CreateAuthMethod.constructFromObject({
      name: `/ci/node-${tag}`, token,
    })));
    assert.match(am.access_id, /^p-[A-Za-z0-9]{12}$/);
    await call('createRole', api.createRole(akeyless.CreateRole.constructFromObject({ name: `/roles/node-${tag}`, token })));
    await call('setRoleRule', api.setRoleRule(akeyless.SetRoleRule.constructFromObject({
      'role-name': `/roles/node-${tag}`, path: '/app/*', capability: ['read', 'list'], token,
    })));
    await call('assocRoleAuthMethod', api.assocRoleAuthMethod(akeyless.AssocRoleAuthMethod.constructFromObject({
      'role-name': `/roles/node-${tag}`, 'am-name': `/ci/node-${tag}`, token,
    })));
    const ciToken = await login(api, am.access_id, am.access_key);

    const mine = await call('getSecretValue', api.getSecretValue(akeyless.GetSecretValue.constructFromObject({
      names: [allowed], token: ciToken,
    })));
    assert.equal(mine[allowed], `node-value-${tag}`);
    await expectStatus(api.getSecretValue(akeyless.GetSecretValue.constructFromObject({
      names: [forbidden], token: ciToken,
    })), 403);
  });
}

test('unknown token and wrong access key are rejected with 401', async () => {
  const api = makeApi();
  await expectStatus(api.getSecretValue(akeyless.GetSecretValue.constructFromObject({
    names: ['/app/x'], token: 't-00000000000000000000000000000000',
  })), 401);
  await expectStatus(api.auth(akeyless.Auth.constructFromObject({
    'access-id': admin.accessId, 'access-key': 'not-the-key', 'access-type': 'access_key',
  })), 401);
});

// Changing auth methods, roles and associations through the npm SDK; every
// ID (access ID, association ID) reads back exactly as the wire sends it.
test('auth-method updates, reset-access-key, update-role and update-assoc through the npm SDK', async () => {
  const api = makeApi();
  const token = await login(api, admin.accessId, admin.accessKey);
  const tag = Math.random().toString(36).slice(2, 10);
  const am = `/node-upd/${tag}/am`;
  const role = `/node-upd/${tag}/role`;
  const created = await call('authMethodCreateApiKey', api.authMethodCreateApiKey(
    akeyless.AuthMethodCreateApiKey.constructFromObject({ name: am, token })));
  assert.match(created.access_id, /^p-[A-Za-z0-9]{12}$/);

  const upd = await call('authMethodUpdateApiKey', api.authMethodUpdateApiKey(
    akeyless.AuthMethodUpdateApiKey.constructFromObject({ name: am, 'new-name': `${am}2`, 'jwt-ttl': 15, token })));
  assert.equal(upd.name, `${am}2`);
  const got = await call('authMethodGet', api.authMethodGet(
    akeyless.AuthMethodGet.constructFromObject({ name: `${am}2`, token })));
  assert.equal(got.auth_method_access_id, created.access_id, 'a rename keeps the access ID');
  assert.equal(got.access_info.jwt_ttl, 15);

  const reset = await call('resetAccessKey', api.resetAccessKey(
    akeyless.ResetAccessKey.constructFromObject({ name: `${am}2`, token })));
  assert.ok(reset.access_key && reset.access_key !== created.access_key);
  await expectStatus(api.auth(akeyless.Auth.constructFromObject({
    'access-id': created.access_id, 'access-key': created.access_key, 'access-type': 'access_key',
  })), 401);
  await login(api, created.access_id, reset.access_key);

  await call('createRole', api.createRole(akeyless.CreateRole.constructFromObject({ name: role, token })));
  const assoc = await call('assocRoleAuthMethod', api.assocRoleAuthMethod(akeyless.AssocRoleAuthMethod.constructFromObject({
    'role-name': role, 'am-name': `${am}2`, 'sub-claims': { team: 'a' }, token,
  })));
  const raw = await (await fetch(`${baseUrl}/get-role`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: role, token }),
  })).text();
  assert.ok(raw.includes(`"assoc_id":"${assoc.assoc_id}"`), `${assoc.assoc_id} as on the wire: ${raw}`);

  await call('updateAssoc', api.updateAssoc(akeyless.UpdateAssoc.constructFromObject({
    'assoc-id': assoc.assoc_id, 'sub-claims': { team: 'b,c' }, 'case-sensitive': 'false', token,
  })));
  const ro = await call('updateRole', api.updateRole(akeyless.UpdateRole.constructFromObject({
    name: role, 'new-name': `${role}2`, description: 'renamed', token,
  })));
  assert.equal(ro.updated, true);
  const after = await call('getRole', api.getRole(akeyless.GetRole.constructFromObject({ name: `${role}2`, token })));
  assert.equal(after.comment, 'renamed');
  const a = after.role_auth_methods_assoc[0];
  assert.equal(a.assoc_id, assoc.assoc_id);
  assert.equal(a.auth_method_access_id, created.access_id);
  assert.deepEqual(a.auth_method_sub_claims, { team: ['b', 'c'] });
  assert.equal(a.sub_claims_case_sensitive, false);

  // The identical association again: 409 naming the existing one.
  await assert.rejects(call('assocRoleAuthMethod', api.assocRoleAuthMethod(akeyless.AssocRoleAuthMethod.constructFromObject({
    'role-name': `${role}2`, 'am-name': `${am}2`, 'sub-claims': { team: 'b,c' }, 'case-sensitive': 'false', token,
  }))), (err) => err.status === 409 && err.message.includes(assoc.assoc_id));

  const del = await call('authMethodDelete', api.authMethodDelete(
    akeyless.AuthMethodDelete.constructFromObject({ name: `${am}2`, token })));
  assert.equal(del.name, `${am}2`);
  await expectStatus(api.authMethodGet(akeyless.AuthMethodGet.constructFromObject({ name: `${am}2`, token })), 404);
});

// JavaScript numbers are doubles: an integer above 2^53 is rounded. Every
// item_id Coffer returns must survive that, so the SDK's describeItem
// (which parses the JSON with JSON.parse) shows exactly the ID on the wire.
test('item_id is exact in JavaScript (describeItem, listItems)', async () => {
  const api = makeApi();
  const token = await login(api, admin.accessId, admin.accessKey);
  const tag = Math.random().toString(36).slice(2, 10);
  for (let i = 0; i < 40; i++) {
    await call('createSecret', api.createSecret(akeyless.CreateSecret.constructFromObject({
      name: `/ids/${tag}/${i}`, value: 'v', token,
    })));
  }
  const listed = await call('listItems', api.listItems(akeyless.ListItems.constructFromObject({
    path: `/ids/${tag}`, token,
  })));
  assert.equal(listed.items.length, 40);
  for (const item of listed.items) {
    // The raw wire text, digit for digit.
    const res = await fetch(`${baseUrl}/describe-item`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: item.item_name, token }),
    });
    const raw = await res.text();
    const onWire = raw.match(/"item_id":(\d+)/)[1];
    const viaSdk = await call('describeItem', api.describeItem(akeyless.DescribeItem.constructFromObject({
      name: item.item_name, token,
    })));
    assert.equal(String(viaSdk.item_id), onWire, `${item.item_name}: the SDK reads ${viaSdk.item_id}, the wire says ${onWire}`);
    assert.ok(Number.isSafeInteger(viaSdk.item_id));
    assert.equal(String(item.item_id), onWire);
  }
});

// Keys: encrypt/decrypt bound to an encryption context, and the public
// part of a signing key, through the npm SDK's models.
test('encrypt/decrypt with an encryption context and getRSAPublic through the npm SDK', async () => {
  const api = makeApi();
  const token = await login(api, admin.accessId, admin.accessKey);
  const tag = Math.random().toString(36).slice(2, 10);
  const aes = `/node-keys/${tag}/aes`;
  const created = await call('createKey', api.createKey(akeyless.CreateKey.constructFromObject({
    name: aes, alg: 'AES256GCM', token,
  })));
  assert.ok(Number.isSafeInteger(created.item_id));
  const context = { tenant: 'acme', purpose: 'backup' };
  const enc = await call('encrypt', api.encrypt(akeyless.Encrypt.constructFromObject({
    'key-name': aes, plaintext: `node-plain-${tag}`, 'encryption-context': context, token,
  })));
  assert.ok(enc.result && enc.result !== `node-plain-${tag}`);
  const dec = await call('decrypt', api.decrypt(akeyless.Decrypt.constructFromObject({
    'key-name': aes, ciphertext: enc.result, 'encryption-context': context, token,
  })));
  assert.equal(dec.result, `node-plain-${tag}`);
  await expectStatus(api.decrypt(akeyless.Decrypt.constructFromObject({
    'key-name': aes, ciphertext: enc.result, 'encryption-context': { tenant: 'other', purpose: 'backup' }, token,
  })), 400);

  const ed = `/node-keys/${tag}/ed`;
  const classic = await call('createClassicKey', api.createClassicKey(akeyless.CreateClassicKey.constructFromObject({
    name: ed, alg: 'Ed25519', token,
  })));
  const pub = await call('getRSAPublic', api.getRSAPublic(akeyless.GetRSAPublic.constructFromObject({ name: ed, token })));
  assert.equal(pub.pem, classic.public_key);
  assert.match(pub.pem, /^-----BEGIN PUBLIC KEY-----/);
  assert.match(pub.ssh, /^ssh-ed25519 AAAA/);
  assert.equal(Buffer.from(pub.raw, 'base64').length, 44, 'raw is the base64 of the 44-byte Ed25519 SubjectPublicKeyInfo');
});

// ---------------------------------------------------------------------------
// Dynamic and rotated secrets (MariaDB from scripts/test.sh: COFFER_TEST_MYSQL_URL)

const mysqlUrl = process.env.COFFER_TEST_MYSQL_URL ? new URL(process.env.COFFER_TEST_MYSQL_URL) : null;

// Run SQL as the test server's administrator with the mysql client (the
// seed's client); `user`/`password` log in as someone else instead.
function mysql(sql, { user, password } = {}) {
  const u = user ?? decodeURIComponent(mysqlUrl.username || 'root');
  const pw = user ? password : decodeURIComponent(mysqlUrl.password);
  return execFileSync('mysql', ['--protocol=tcp', '-h', mysqlUrl.hostname, '-P', mysqlUrl.port || '3306',
    `-u${u}`, ...(pw ? [`-p${pw}`] : []), '--connect-timeout=10', '-N', '-B', '-e', sql],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function mysqlLoginWorks(user, password) {
  try {
    return mysql('SELECT 1', { user, password }).trim() === '1';
  } catch {
    return false;
  }
}

test('dynamic and rotated MySQL secrets through the npm SDK', { skip: mysqlUrl ? false : 'COFFER_TEST_MYSQL_URL is not set' }, async () => {
  const api = makeApi();
  const token = await login(api, admin.accessId, admin.accessKey);
  const tag = Math.random().toString(36).slice(2, 9).padEnd(7, '0');
  const target = `/sdk-node/${tag}/mysql`;
  const dyn = `/sdk-node/${tag}/n${tag}`;
  const rot = `/sdk-node/${tag}/rot`;
  const user = `ct_node_${tag}`;
  const pw0 = `NodePw${tag}${Math.random().toString(36).slice(2, 10)}`;
  const db = decodeURIComponent(mysqlUrl.pathname.slice(1)) || 'coffer_test';
  mysql(`CREATE USER '${user}'@'%' IDENTIFIED BY '${pw0}'; GRANT SELECT ON \`${db}\`.* TO '${user}'@'%'`);
  try {
    const t = await call('targetCreateDB', api.targetCreateDB(akeyless.TargetCreateDB.constructFromObject({
      name: target, 'db-type': 'mysql', host: mysqlUrl.hostname, port: mysqlUrl.port || '3306',
      'user-name': decodeURIComponent(mysqlUrl.username || 'root'), pwd: decodeURIComponent(mysqlUrl.password),
      'db-name': db, token,
    })));
    assert.ok(t.target_id);
    await call('dynamicSecretCreateMySql', api.dynamicSecretCreateMySql(akeyless.DynamicSecretCreateMySql.constructFromObject({
      name: dyn, 'target-name': target, 'user-ttl': '2m', token,
    })));

    const value = await call('getDynamicSecretValue', api.getDynamicSecretValue(akeyless.GetDynamicSecretValue.constructFromObject({
      name: dyn, token,
    })));
    for (const k of ['id', 'user', 'password', 'ttl_in_minutes']) {
      assert.equal(typeof value[k], 'string', `${k} is a ${typeof value[k]}, not a string`);
    }
    assert.equal(value.id, value.user);
    assert.equal(value.ttl_in_minutes, '2');
    assert.ok(mysqlLoginWorks(value.user, value.password), 'the issued credential does not log in');

    await call('rotatedSecretCreateMysql', api.rotatedSecretCreateMysql(akeyless.RotatedSecretCreateMysql.constructFromObject({
      name: rot, 'target-name': target, 'rotator-type': 'password', 'rotated-username': user,
      'rotated-password': pw0, 'authentication-credentials': 'use-target-creds', token,
    })));
    const v1 = await call('getRotatedSecretValue', api.getRotatedSecretValue(akeyless.GetRotatedSecretValue.constructFromObject({
      names: rot, token,
    })));
    assert.deepEqual(v1.value, { username: user, password: pw0 });
    assert.ok(Number.isInteger(v1.version));
    await call('rotateSecret', api.rotateSecret(akeyless.RotateSecret.constructFromObject({ name: rot, token })));
    const v2 = await call('getRotatedSecretValue', api.getRotatedSecretValue(akeyless.GetRotatedSecretValue.constructFromObject({
      names: rot, token,
    })));
    assert.equal(v2.value.username, user);
    assert.notEqual(v2.value.password, pw0);
    assert.ok(v2.version > v1.version);
    assert.ok(mysqlLoginWorks(user, v2.value.password), 'the rotated password does not log in');
    assert.ok(!mysqlLoginWorks(user, pw0), 'the old password still logs in');
    const old = await call('getRotatedSecretValue', api.getRotatedSecretValue(akeyless.GetRotatedSecretValue.constructFromObject({
      names: rot, version: v1.version, token,
    })));
    assert.equal(old.value.password, pw0);

    await call('dynamicSecretDelete', api.dynamicSecretDelete(akeyless.DynamicSecretDelete.constructFromObject({ name: dyn, token })));
    assert.equal(mysql(`SELECT COUNT(*) FROM mysql.user WHERE user = '${value.user}'`).trim(), '0',
      'deleting the dynamic secret did not revoke its credential');
  } finally {
    mysql(`DROP USER IF EXISTS '${user}'@'%'`);
    for (const u of mysql(`SELECT user FROM mysql.user WHERE user LIKE 'tmp\\_n${tag}\\_%'`).split('\n').filter(Boolean)) {
      mysql(`DROP USER IF EXISTS '${u}'@'%'`);
    }
  }
});

// update-item, get-tags, soft deletion with restore, delete-items.
test('updateItem, getTags, soft deleteItem and restore, deleteItems through the npm SDK', async () => {
  const api = makeApi();
  const token = await login(api, admin.accessId, admin.accessKey);
  const tag = Math.random().toString(36).slice(2, 10);
  const folder = `/node-items/${tag}`;
  const a = `${folder}/a`;
  const b = `${folder}/sub/b`;
  for (const name of [a, b]) {
    await call('createSecret', api.createSecret(akeyless.CreateSecret.constructFromObject({
      name, value: `value of ${name}`, tags: ['x', 'y'], token,
    })));
  }
  const updated = await call('updateItem', api.updateItem(akeyless.UpdateItem.constructFromObject({
    name: a, 'add-tag': ['z'], 'rm-tag': ['x'], description: 'from node', token,
  })));
  assert.equal(updated.updated, true);
  const tags = await call('getTags', api.getTags(akeyless.GetTags.constructFromObject({ name: a, token })));
  assert.deepEqual([...tags].sort(), ['y', 'z']);
  const described = await call('describeItem', api.describeItem(akeyless.DescribeItem.constructFromObject({
    name: a, token,
  })));
  assert.equal(described.item_metadata, 'from node');

  // A whole-item delete with delete-in-days: pending deletion, then restored.
  const deleted = await call('deleteItem', api.deleteItem(akeyless.DeleteItem.constructFromObject({
    name: a, 'delete-in-days': 3, token,
  })));
  assert.equal(deleted.version_deleted, -1);
  assert.ok(deleted.deletion_date instanceof Date && deleted.deletion_date > new Date());
  await expectStatus(api.getSecretValue(akeyless.GetSecretValue.constructFromObject({ names: [a], token })), 404);
  const pending = await call('describeItem', api.describeItem(akeyless.DescribeItem.constructFromObject({
    name: a, token,
  })));
  assert.equal(pending.item_state, 'PendingDeletion');
  assert.equal(pending.deletion_date.getTime(), deleted.deletion_date.getTime());
  const res = await fetch(`${baseUrl}/restore-item`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: a, token }),
  });
  assert.equal(res.status, 200, await res.text());
  const back = await call('getSecretValue', api.getSecretValue(akeyless.GetSecretValue.constructFromObject({
    names: [a], token,
  })));
  assert.equal(back[a], `value of ${a}`);

  // deleteItems: the whole folder, in one call.
  const bulk = await call('deleteItems', api.deleteItems(akeyless.DeleteItems.constructFromObject({
    path: folder, token,
  })));
  assert.deepEqual([...bulk.deleted_items].sort(), [a, b].sort());
  for (const name of [a, b]) {
    await expectStatus(api.getSecretValue(akeyless.GetSecretValue.constructFromObject({ names: [name], token })), 404);
  }
});
