#!/usr/bin/env node
// shardy's S3 test server: s3rver 3.7.1 (in-process, on its own 127.0.0.1 port) behind a front
// end that closes s3rver's gaps — SigV4 verification on every request, anonymous requests
// refused, If-None-Match/If-Match on PUT, If-Match on GET/HEAD, exact byte ranges — plus a
// fault-injecting proxy port in front of the front end. Test tooling only; 127.0.0.1 only.
//
// Run with `node --openssl-legacy-provider server.js ...` (s3rver's ListObjectsV2 continuation
// tokens use DES). See README.md for options and the admin API.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    port: 0,
    faultPort: 0,
    directory: null,
    accessKey: 'shardy-test-key',
    secretKey: 'shardy-test-secret',
    region: 'us-east-1',
    sessionCredentials: [], // {accessKey, secretKey, token}
    buckets: [],
    portFile: null,
    infoFile: null,
    countFile: null,
    serviceEndpoint: 'localhost',
    idleExitSeconds: 0,
    maxSkewSeconds: 900,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) throw new Error(`missing value for ${argv[i]}`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = Number(need(i)); i++; break;
      case '--fault-port': o.faultPort = Number(need(i)); i++; break;
      case '--directory': o.directory = need(i); i++; break;
      case '--access-key': o.accessKey = need(i); i++; break;
      case '--secret-key': o.secretKey = need(i); i++; break;
      case '--region': o.region = need(i); i++; break;
      case '--session-credential': {
        // ACCESS:SECRET:TOKEN (the token may itself contain ':')
        const v = need(i); i++;
        const p1 = v.indexOf(':'), p2 = v.indexOf(':', p1 + 1);
        if (p1 < 0 || p2 < 0) throw new Error('--session-credential wants ACCESS:SECRET:TOKEN');
        o.sessionCredentials.push(
            {accessKey: v.slice(0, p1), secretKey: v.slice(p1 + 1, p2), token: v.slice(p2 + 1)});
        break;
      }
      case '--bucket': o.buckets.push(need(i)); i++; break;
      case '--port-file': o.portFile = need(i); i++; break;
      case '--info-file': o.infoFile = need(i); i++; break;
      case '--count-file': o.countFile = need(i); i++; break;
      case '--service-endpoint': o.serviceEndpoint = need(i); i++; break;
      case '--idle-exit': o.idleExitSeconds = Number(need(i)); i++; break;
      case '--max-skew': o.maxSkewSeconds = Number(need(i)); i++; break;
      case '-h':
      case '--help':
        process.stdout.write(fs.readFileSync(path.join(__dirname, 'README.md'), 'utf8'));
        process.exit(0);
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (!o.directory) throw new Error('--directory DIR is required');
  return o;
}

// ---------------------------------------------------------------------------------------------
// S3 error responses

let requestCounter = 0;
function newRequestId() {
  requestCounter++;
  return crypto.randomBytes(4).toString('hex').toUpperCase() + requestCounter.toString(16).padStart(8, '0');
}

function xmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;'}[c]));
}

function errorXml(code, message, extra, requestId) {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>';
  x += `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>`;
  for (const [k, v] of Object.entries(extra || {})) x += `<${k}>${xmlEscape(v)}</${k}>`;
  x += `<RequestId>${requestId}</RequestId><HostId>shardy-s3server</HostId></Error>`;
  return x;
}

function sendError(req, res, status, code, message, extra, headers) {
  const requestId = newRequestId();
  const body = Buffer.from(errorXml(code, message, extra, requestId), 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/xml');
  res.setHeader('x-amz-request-id', requestId);
  for (const [k, v] of Object.entries(headers || {})) res.setHeader(k, v);
  // HEAD responses carry no body (as on S3); Content-Length still describes the error body.
  res.setHeader('Content-Length', body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
}

class S3Fail extends Error {
  constructor(status, code, message, extra, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }
}

// ---------------------------------------------------------------------------------------------
// SigV4 (header authentication)

// Percent-decodes to bytes (tolerant: a stray '%' stays literal).
function percentDecode(s) {
  const bytes = [];
  const src = Buffer.from(s, 'utf8');
  for (let i = 0; i < src.length; i++) {
    if (src[i] === 0x25 && i + 2 < src.length + 0 && /^[0-9A-Fa-f]{2}$/.test(String.fromCharCode(src[i + 1], src[i + 2]))) {
      bytes.push(parseInt(String.fromCharCode(src[i + 1], src[i + 2]), 16));
      i += 2;
    } else {
      bytes.push(src[i]);
    }
  }
  return Buffer.from(bytes);
}

// AWS's URI encoding: everything but unreserved characters (and '/' in paths) as %XX.
function uriEncode(bytes, keepSlash) {
  let out = '';
  for (const b of bytes) {
    const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
        b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    if (unreserved || (keepSlash && b === 0x2f)) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function canonicalUri(rawPath) {
  if (rawPath === '') return '/';
  return uriEncode(percentDecode(rawPath), true);
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter((p) => p.length > 0).map((p) => {
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? '' : p.slice(eq + 1);
    return [uriEncode(percentDecode(name), false), uriEncode(percentDecode(value), false)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

// Header values by lowercase name, every occurrence, in order (from rawHeaders).
function headerValues(req) {
  const m = new Map();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const n = req.rawHeaders[i].toLowerCase();
    if (!m.has(n)) m.set(n, []);
    m.get(n).push(req.rawHeaders[i + 1]);
  }
  return m;
}

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return null;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

// Throws S3Fail unless the request carries a valid SigV4 header signature over `bodyHash`.
function verifySigV4(req, opts, credentials, bodyHash) {
  const auth = req.headers['authorization'];
  const url = req.url;
  const qpos = url.indexOf('?');
  const rawPath = qpos < 0 ? url : url.slice(0, qpos);
  const rawQuery = qpos < 0 ? '' : url.slice(qpos + 1);
  if (!auth) {
    if (/(^|&)X-Amz-Algorithm=/i.test(rawQuery) || /(^|&)Signature=/.test(rawQuery))
      throw new S3Fail(403, 'AccessDenied', 'Query-string authentication is not supported by this test server');
    throw new S3Fail(403, 'AccessDenied', 'Anonymous access is forbidden: the request carries no Authorization header');
  }
  const m = /^AWS4-HMAC-SHA256\s+Credential\s*=\s*([^,\s]+)\s*,\s*SignedHeaders\s*=\s*([^,\s]+)\s*,\s*Signature\s*=\s*([0-9a-fA-F]+)\s*$/.exec(auth);
  if (!m) {
    if (/^AWS /.test(auth))
      throw new S3Fail(400, 'InvalidRequest', 'Signature Version 2 is not supported; use AWS4-HMAC-SHA256');
    throw new S3Fail(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed', {Authorization: auth});
  }
  const [, credential, signedHeadersStr, signature] = m;
  const scopeParts = credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[3] !== 's3' || scopeParts[4] !== 'aws4_request')
    throw new S3Fail(400, 'AuthorizationHeaderMalformed', `The credential is malformed: ${credential}`);
  const [accessKey, scopeDate, scopeRegion] = scopeParts;
  const cred = credentials.get(accessKey);
  if (!cred)
    throw new S3Fail(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {AWSAccessKeyId: accessKey});
  if (scopeRegion !== opts.region)
    throw new S3Fail(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; the region '${scopeRegion}' is wrong; expecting '${opts.region}'`, {Region: opts.region});

  const amzDate = req.headers['x-amz-date'];
  const t = parseAmzDate(amzDate);
  if (t === null)
    throw new S3Fail(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date header (YYYYMMDDTHHMMSSZ)');
  if (amzDate.slice(0, 8) !== scopeDate)
    throw new S3Fail(400, 'AuthorizationHeaderMalformed', `The credential scope date ${scopeDate} does not match x-amz-date ${amzDate}`);
  if (Math.abs(Date.now() - t) > opts.maxSkewSeconds * 1000)
    throw new S3Fail(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {RequestTime: amzDate, ServerTime: new Date().toISOString()});

  const payloadHash = req.headers['x-amz-content-sha256'];
  if (payloadHash === undefined)
    throw new S3Fail(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash))
    throw new S3Fail(400, 'InvalidArgument', `x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a lowercase hex SHA-256; got '${payloadHash}'`);

  const signedHeaders = signedHeadersStr.split(';');
  const values = headerValues(req);
  if (!signedHeaders.includes('host'))
    throw new S3Fail(403, 'AccessDenied', 'The host header must be signed');
  const sorted = [...signedHeaders].sort();
  if (sorted.join(';') !== signedHeadersStr || signedHeaders.some((h) => h !== h.toLowerCase() || h === ''))
    throw new S3Fail(400, 'AuthorizationHeaderMalformed', 'SignedHeaders must be lowercase, sorted and separated by ;');
  for (const name of values.keys()) {
    if (name.startsWith('x-amz-') && !signedHeaders.includes(name))
      throw new S3Fail(403, 'AccessDenied', `There were headers present in the request which were not signed: ${name}`, {HeadersNotSigned: name});
  }

  const token = req.headers['x-amz-security-token'];
  if (cred.token !== undefined || token !== undefined) {
    if (token !== cred.token)
      throw new S3Fail(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
  }

  const canonicalHeaders = signedHeaders.map((h) => {
    const vs = values.get(h) || [];
    return `${h}:${vs.map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`;
  }).join('');
  const canonicalRequest = [req.method, canonicalUri(rawPath), canonicalQuery(rawQuery), canonicalHeaders,
                            signedHeadersStr, payloadHash].join('\n');
  const scope = `${scopeDate}/${scopeRegion}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  let key = hmac('AWS4' + cred.secretKey, scopeDate);
  key = hmac(key, scopeRegion);
  key = hmac(key, 's3');
  key = hmac(key, 'aws4_request');
  const expected = hmac(key, stringToSign).toString('hex');
  const given = signature.toLowerCase();
  if (expected.length !== given.length || !crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(given))) {
    throw new S3Fail(403, 'SignatureDoesNotMatch',
                     'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
                     {AWSAccessKeyId: accessKey, StringToSign: stringToSign, SignatureProvided: signature, CanonicalRequest: canonicalRequest});
  }
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== bodyHash) {
    throw new S3Fail(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.",
                     {ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: bodyHash});
  }
}

// ---------------------------------------------------------------------------------------------
// Conditions and ranges

function etagList(h) {
  return h.split(',').map((s) => s.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')).filter((s) => s.length > 0);
}
function etagMatches(header, etag) {
  const bare = (etag || '').replace(/^"(.*)"$/, '$1');
  return etagList(header).some((e) => e === '*' || e === bare);
}

// Returns null (no usable range: serve the whole object), 'unsatisfiable', or {start, end}.
function parseRange(h, size) {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) return null;  // malformed or multi-range: ignored, as RFC 9110 allows
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return {start: Math.max(0, size - n), end: size - 1};
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return null;  // invalid byte-range-spec: ignored
  if (start >= size) return 'unsatisfiable';
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return {start, end};
}

// ---------------------------------------------------------------------------------------------
// Request classification (mirrors s3rver's vhost middleware)

const OBJECT_SUBRESOURCES = new Set(['acl', 'tagging', 'torrent', 'uploads', 'uploadId', 'attributes', 'legal-hold', 'retention', 'restore', 'select']);

function classify(req, opts) {
  const url = req.url;
  const qpos = url.indexOf('?');
  const rawPath = qpos < 0 ? url : url.slice(0, qpos);
  const query = new URLSearchParams(qpos < 0 ? '' : url.slice(qpos + 1));
  const hostname = (req.headers.host || '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const esc = opts.serviceEndpoint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const vm = new RegExp(`^(?:(.+)\\.)?s3([-.].+)?\\.${esc}$`).exec(hostname);
  let bucket, keyRaw;
  const segs = rawPath.split('/');
  if (vm && vm[1]) {
    bucket = vm[1];
    keyRaw = segs.slice(1).join('/');
  } else if (vm || net.isIP(hostname) || hostname === 'localhost' || hostname === require('os').hostname()) {
    bucket = segs[1] || '';
    keyRaw = segs.slice(2).join('/');
  } else {
    bucket = hostname;
    keyRaw = segs.slice(1).join('/');
  }
  let subresource = false;
  for (const k of query.keys()) if (OBJECT_SUBRESOURCES.has(k)) subresource = true;
  const isObject = bucket !== '' && keyRaw !== '' && !subresource;
  return {bucket, key: percentDecode(keyRaw).toString('utf8'), isObject, rawPath};
}

// ---------------------------------------------------------------------------------------------
// Delimiter listings
//
// s3rver's filesystem store skips every directory below a would-be common prefix before it has
// seen a key in it, so a common prefix whose objects all sit two or more levels deeper (e.g.
// shards/ -> run_id=R/ over run_id=R/db=00000/attempt=00/shard.db) is never listed; S3 lists
// it. With a delimiter, list everything under the prefix without one (no pruning) and group the
// keys here as s3rver does: sorted keys, startAfter already applied, maxKeys counting objects.

function patchDelimiterListing() {
  const FilesystemStore = require('s3rver/lib/stores/filesystem');
  const original = FilesystemStore.prototype.listObjects;
  if (original.shardyPatched) return;
  const patched = async function (bucket, options) {
    const delimiter = options.delimiter || '';
    if (!delimiter) return original.call(this, bucket, options);
    const prefix = options.prefix || '';
    const maxKeys = options.maxKeys === undefined ? Infinity : options.maxKeys;
    const all = await original.call(this, bucket, {...options, delimiter: '', maxKeys: Infinity});
    const sorted = all.objects.slice().sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    const commonPrefixes = new Set();
    const objects = [];
    let isTruncated = false;
    for (const o of sorted) {
      const idx = o.key.slice(prefix.length).indexOf(delimiter);
      if (idx !== -1) {
        commonPrefixes.add(o.key.slice(0, prefix.length + idx + delimiter.length));
        continue;
      }
      if (objects.length < maxKeys) {
        objects.push(o);
      } else {
        isTruncated = true;
        break;
      }
    }
    return {objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated};
  };
  patched.shardyPatched = true;
  FilesystemStore.prototype.listObjects = patched;
}

// ---------------------------------------------------------------------------------------------
// The front end

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function copyResponseHeaders(upRes, res, skip) {
  for (let i = 0; i + 1 < upRes.rawHeaders.length; i += 2) {
    const n = upRes.rawHeaders[i];
    const ln = n.toLowerCase();
    if (HOP_BY_HOP.has(ln) || (skip && skip.has(ln))) continue;
    const prev = res.getHeader(n);
    if (prev === undefined) res.setHeader(n, upRes.rawHeaders[i + 1]);
    else res.setHeader(n, [].concat(prev, upRes.rawHeaders[i + 1]));
  }
}

function upstreamHeaders(req, drop) {
  const h = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const ln = req.rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(ln) || ln === 'authorization' || ln === 'expect' || ln === 'content-length' || (drop && drop.has(ln))) continue;
    if (h[ln] === undefined) h[ln] = req.rawHeaders[i + 1];
    else h[ln] = [].concat(h[ln], req.rawHeaders[i + 1]);
  }
  return h;
}

class Front {
  constructor(opts, upstreamPort) {
    this.opts = opts;
    this.upstreamPort = upstreamPort;
    this.agent = new http.Agent({keepAlive: true, maxSockets: 64});
    this.credentials = new Map();
    this.credentials.set(opts.accessKey, {secretKey: opts.secretKey});
    for (const c of opts.sessionCredentials) this.credentials.set(c.accessKey, {secretKey: c.secretKey, token: c.token});
    this.locks = new Map();
    this.log = [];  // {via, method, path, status}
    this.total = 0;
    this.faultRules = [];  // {prefix, method, faults: [...]}
    this.lastActivity = Date.now();
  }

  record(via, req, res) {
    const qpos = req.url.indexOf('?');
    const entry = {via, method: req.method, path: qpos < 0 ? req.url : req.url.slice(0, qpos), status: 0, fault: null,
                   conn: req.socket.shardyConnectionId};
    if (this.log.length >= 500000) this.log.splice(0, 100000);
    this.log.push(entry);
    if (via === 'front') this.total++;
    this.lastActivity = Date.now();
    res.on('finish', () => { entry.status = res.statusCode; });
    res.on('close', () => { if (!entry.status) entry.status = res.writableFinished ? res.statusCode : -1; });
    return entry;
  }

  // Serialises writes to one object so that precondition checks and the write are atomic.
  async withLock(name, fn) {
    const prev = this.locks.get(name) || Promise.resolve();
    let release;
    const mine = new Promise((r) => { release = r; });
    const chain = prev.then(() => mine);
    this.locks.set(name, chain);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(name) === chain) this.locks.delete(name);
    }
  }

  upstream(method, req, headers, body) {
    return new Promise((resolve, reject) => {
      const h = {...headers};
      if (body !== undefined) h['content-length'] = String(body.length);
      const up = http.request({host: '127.0.0.1', port: this.upstreamPort, method, path: req.url, headers: h, agent: this.agent});
      up.on('response', (upRes) => resolve({up, upRes}));
      up.on('error', reject);
      up.end(body);
    });
  }

  async readBody(req) {
    const chunks = [];
    const hash = crypto.createHash('sha256');
    for await (const c of req) {
      chunks.push(c);
      hash.update(c);
    }
    return {body: Buffer.concat(chunks), hash: hash.digest('hex')};
  }

  async handle(req, res) {
    if (req.url.startsWith('/_shardy/')) return this.admin(req, res);
    this.record('front', req, res);
    try {
      const {body, hash} = await this.readBody(req);
      verifySigV4(req, this.opts, this.credentials, hash);
      const c = classify(req, this.opts);
      if (c.isObject && (req.method === 'GET' || req.method === 'HEAD')) return await this.getObject(req, res);
      if (c.isObject && req.method === 'PUT' && !req.headers['x-amz-copy-source'])
        return await this.withLock(`${c.bucket}/${c.key}`, () => this.putObject(req, res, body));
      if (c.isObject && req.method === 'DELETE')
        return await this.withLock(`${c.bucket}/${c.key}`, () => this.passThrough(req, res, body));
      return await this.passThrough(req, res, body);
    } catch (e) {
      if (e instanceof S3Fail) return sendError(req, res, e.status, e.code, e.message, e.extra, e.headers);
      console.error(`[s3server] ${req.method} ${req.url}: ${e && e.stack || e}`);
      if (!res.headersSent) return sendError(req, res, 500, 'InternalError', `test server error: ${e && e.message}`);
      res.destroy();
    }
  }

  async passThrough(req, res, body) {
    const {upRes} = await this.upstream(req.method, req, upstreamHeaders(req), body);
    res.statusCode = upRes.statusCode;
    copyResponseHeaders(upRes, res);
    await pipeBody(upRes, res, req.method === 'HEAD');
  }

  async putObject(req, res, body) {
    const inm = req.headers['if-none-match'];
    const im = req.headers['if-match'];
    if (inm !== undefined && inm.trim() !== '*')
      throw new S3Fail(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented', {Header: 'If-None-Match'});
    if (inm !== undefined || im !== undefined) {
      const {upRes} = await this.upstream('HEAD', req, upstreamHeaders(req, new Set(['if-match', 'if-none-match', 'range'])));
      upRes.resume();
      const exists = upRes.statusCode === 200;
      if (!exists && upRes.statusCode !== 404) throw new S3Fail(500, 'InternalError', `precondition check got ${upRes.statusCode}`);
      if (inm !== undefined && exists)
        throw new S3Fail(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {Condition: 'If-None-Match'});
      if (im !== undefined) {
        if (!exists) throw new S3Fail(404, 'NoSuchKey', 'The specified key does not exist.', {Key: classify(req, this.opts).key});
        if (!etagMatches(im, upRes.headers['etag']))
          throw new S3Fail(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {Condition: 'If-Match'});
      }
    }
    const {upRes} = await this.upstream('PUT', req, upstreamHeaders(req, new Set(['if-match', 'if-none-match'])), body);
    res.statusCode = upRes.statusCode;
    copyResponseHeaders(upRes, res);
    await pipeBody(upRes, res, false);
  }

  // GET/HEAD of an object: conditions and ranges applied here. A GET of a plain bounded range
  // (bytes=A-B, B > 0) asks s3rver for just that slice (its range reading is right for these;
  // fetching the whole object would cost the bytes before A on every ranged GET, ~0.2 s at 80 MiB);
  // everything else, and any answer but a 206 to it, fetches the whole object.
  async getObject(req, res) {
    const drop = new Set(['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']);
    const isHead = req.method === 'HEAD';
    const bounded = !isHead && req.headers['range'] !== undefined &&
                    /^\s*bytes\s*=\s*(\d+)\s*-\s*(\d+)\s*$/.exec(req.headers['range']);
    if (bounded && Number(bounded[2]) > 0 && Number(bounded[2]) >= Number(bounded[1])) {
      const h = upstreamHeaders(req, drop);
      h['range'] = `bytes=${Number(bounded[1])}-${Number(bounded[2])}`;
      const {up, upRes} = await this.upstream('GET', req, h);
      const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(upRes.headers['content-range'] || '');
      if (upRes.statusCode === 206 && cr && Number(cr[1]) === Number(bounded[1]))
        return this.sendObject(req, res, up, upRes, Number(cr[3]), true);
      upRes.destroy();
      up.destroy();
    }
    const {up, upRes} = await this.upstream(req.method, req, upstreamHeaders(req, drop));
    return this.sendObject(req, res, up, upRes, Number(upRes.headers['content-length']), false);
  }

  // upRes: s3rver's 200 for the whole object, or (sliced) its 206 for exactly the requested range.
  async sendObject(req, res, up, upRes, size, sliced) {
    const isHead = req.method === 'HEAD';
    if (upRes.statusCode !== 200 && !sliced) {
      res.statusCode = upRes.statusCode;
      copyResponseHeaders(upRes, res);
      return pipeBody(upRes, res, isHead);
    }
    const abandon = () => { upRes.destroy(); up.destroy(); };
    const etag = upRes.headers['etag'];
    const lastModified = Date.parse(upRes.headers['last-modified'] || '');
    const im = req.headers['if-match'];
    const inm = req.headers['if-none-match'];
    const ims = Date.parse(req.headers['if-modified-since'] || '');
    const ius = Date.parse(req.headers['if-unmodified-since'] || '');
    const modifiedAfter = (d) => Math.floor(lastModified / 1000) > Math.floor(d / 1000);
    if ((im !== undefined && !etagMatches(im, etag)) || (im === undefined && !isNaN(ius) && modifiedAfter(ius))) {
      abandon();
      throw new S3Fail(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold',
                       {Condition: im !== undefined ? 'If-Match' : 'If-Unmodified-Since'});
    }
    if ((inm !== undefined && etagMatches(inm, etag)) || (inm === undefined && !isNaN(ims) && !modifiedAfter(ims))) {
      abandon();
      res.statusCode = 304;
      if (etag) res.setHeader('ETag', etag);
      if (upRes.headers['last-modified']) res.setHeader('Last-Modified', upRes.headers['last-modified']);
      res.end();
      return;
    }
    const range = req.headers['range'] !== undefined ? parseRange(req.headers['range'], size) : null;
    if (range === 'unsatisfiable') {
      abandon();
      throw new S3Fail(416, 'InvalidRange', 'The requested range is not satisfiable', {RangeRequested: req.headers['range'], ActualObjectSize: size},
                       {'Content-Range': `bytes */${size}`});
    }
    copyResponseHeaders(upRes, res, new Set(['content-length', 'content-range']));
    res.setHeader('Accept-Ranges', 'bytes');
    if (range === null) {
      res.statusCode = 200;
      res.setHeader('Content-Length', size);
      return pipeBody(upRes, res, isHead);
    }
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.setHeader('Content-Length', range.end - range.start + 1);
    if (isHead) {
      abandon();
      res.end();
      return;
    }
    if (sliced) await pipeSlice(upRes, res, 0, range.end + 1 - range.start);
    else await pipeSlice(upRes, res, range.start, range.end + 1);
    abandon();
  }

  // --- admin API (not S3; bucket names cannot start with '_') ---
  async admin(req, res) {
    const u = new URL(req.url, 'http://x');
    const reply = (status, obj) => {
      const b = Buffer.from(JSON.stringify(obj));
      res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': b.length});
      res.end(b);
    };
    let body = '';
    for await (const c of req) body += c;
    try {
      if (u.pathname === '/_shardy/health') return reply(200, {ok: true});
      if (u.pathname === '/_shardy/stats' && req.method === 'GET') {
        const prefix = u.searchParams.get('prefix') || '';
        const method = u.searchParams.get('method');
        const via = u.searchParams.get('via') || 'front';
        const statuses = {};
        const faults = {};
        const connections = new Set();
        let count = 0;
        for (const e of this.log) {
          if (e.via !== via || !e.path.startsWith(prefix) || (method && e.method !== method)) continue;
          count++;
          connections.add(e.conn);
          statuses[e.status] = (statuses[e.status] || 0) + 1;
          if (e.fault) faults[e.fault] = (faults[e.fault] || 0) + 1;
        }
        return reply(200, {requests: count, connections: connections.size, statuses, faults, total: this.total});
      }
      if (u.pathname === '/_shardy/faults' && req.method === 'POST') {
        const rule = JSON.parse(body || '{}');
        if (typeof rule.prefix !== 'string' || !rule.prefix.startsWith('/') || !Array.isArray(rule.faults))
          return reply(400, {error: 'want {"prefix": "/bucket/...", "method"?: "GET", "query_contains"?: "...", "faults": [...]}'});
        for (const f of rule.faults) validateFault(f);
        this.faultRules.push({prefix: rule.prefix, method: rule.method || null, queryContains: rule.query_contains || null,
                              faults: rule.faults.slice()});
        return reply(200, {ok: true});
      }
      if (u.pathname === '/_shardy/faults' && req.method === 'GET') {
        const pending = this.faultRules.filter(ruleFilter(u)).reduce((n, r) => n + r.faults.length, 0);
        return reply(200, {pending});
      }
      if (u.pathname === '/_shardy/faults' && req.method === 'DELETE') {
        const f = ruleFilter(u);
        this.faultRules = this.faultRules.filter((r) => !f(r));
        return reply(200, {ok: true});
      }
      if (u.pathname === '/_shardy/shutdown' && req.method === 'POST') {
        reply(200, {ok: true});
        setImmediate(() => shutdown(0));
        return;
      }
      return reply(404, {error: 'unknown admin endpoint'});
    } catch (e) {
      return reply(400, {error: String(e && e.message || e)});
    }
  }

  takeFault(req) {
    const qpos = req.url.indexOf('?');
    const p = qpos < 0 ? req.url : req.url.slice(0, qpos);
    const query = qpos < 0 ? '' : req.url.slice(qpos + 1);
    for (const r of this.faultRules) {
      if (r.faults.length > 0 && p.startsWith(r.prefix) && (!r.method || r.method === req.method) &&
          (!r.queryContains || query.includes(r.queryContains)))
        return r.faults.shift();
    }
    return null;
  }
}

// Fault rules selected by ?prefix= (rules whose prefix starts with it) and, if given,
// ?query_contains= (rules with exactly that query filter): tests sharing the server select only
// their own rules.
function ruleFilter(u) {
  const prefix = u.searchParams.get('prefix') || '';
  const qc = u.searchParams.get('query_contains');
  return (r) => r.prefix.startsWith(prefix) && (qc === null || r.queryContains === qc);
}

function pipeBody(upRes, res, isHead) {
  return new Promise((resolve) => {
    if (isHead) {
      upRes.resume();
      res.end();
      return resolve();
    }
    upRes.on('error', () => { res.destroy(); resolve(); });
    upRes.on('aborted', () => { res.destroy(); resolve(); });
    res.on('close', resolve);
    upRes.pipe(res);
  });
}

// Streams bytes [begin, end) of upRes to res.
function pipeSlice(upRes, res, begin, end) {
  return new Promise((resolve) => {
    let offset = 0;
    let done = false;
    const finish = () => { if (!done) { done = true; resolve(); } };
    upRes.on('data', (chunk) => {
      if (done) return;
      const cs = offset, ce = offset + chunk.length;
      offset = ce;
      if (ce <= begin) return;
      const part = chunk.subarray(Math.max(0, begin - cs), Math.min(chunk.length, end - cs));
      const last = ce >= end;
      if (last) {
        res.end(part);
        finish();
        return;
      }
      if (!res.write(part)) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('end', () => { if (!done) { res.destroy(); finish(); } });  // object shorter than its length
    upRes.on('error', () => { res.destroy(); finish(); });
    res.on('close', finish);
  });
}

// ---------------------------------------------------------------------------------------------
// The fault-injecting proxy (a second port in front of the front end)

const FAULT_KINDS = new Set(['reset_before_response', 'close_before_response', 'reset_mid_body', 'short_body', 'status', 'stall', 'stall_mid_body']);
const MAX_STALL_MS = 30000;

function validateFault(f) {
  if (!f || !FAULT_KINDS.has(f.kind)) throw new Error(`unknown fault kind ${f && f.kind}; known: ${[...FAULT_KINDS].join(', ')}`);
  if ((f.kind === 'stall' || f.kind === 'stall_mid_body') && !(f.ms > 0 && f.ms <= MAX_STALL_MS))
    throw new Error(`stall needs 0 < ms <= ${MAX_STALL_MS}`);
  if (f.kind === 'status' && !(f.status >= 400 && f.status <= 599)) throw new Error('status fault needs status 400..599');
}

function rawResponseHead(upRes) {
  let h = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage || ''}\r\n`;
  for (let i = 0; i + 1 < upRes.rawHeaders.length; i += 2) {
    const ln = upRes.rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(ln)) continue;
    h += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`;
  }
  return h + 'Connection: close\r\n\r\n';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

class FaultProxy {
  constructor(front, targetPort) {
    this.front = front;
    this.targetPort = targetPort;
    this.agent = new http.Agent({keepAlive: true, maxSockets: 64});
  }

  forward(req, body) {
    return new Promise((resolve, reject) => {
      const h = upstreamHeadersKeepAuth(req);
      h['content-length'] = String(body.length);
      const up = http.request({host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: h, agent: this.agent});
      up.on('response', (upRes) => resolve({up, upRes}));
      up.on('error', reject);
      up.end(body);
    });
  }

  async handle(req, res) {
    const entry = this.front.record('proxy', req, res);
    const fault = this.front.takeFault(req);
    if (fault) entry.fault = fault.kind;
    const sock = req.socket;
    let clientGone = false;
    sock.on('close', () => { clientGone = true; });
    try {
      const body = await readAll(req);
      if (fault && fault.kind === 'status') {
        const codes = {500: 'InternalError', 503: 'SlowDown', 429: 'SlowDown', 502: 'BadGateway', 504: 'GatewayTimeout'};
        const headers = fault.retry_after !== undefined ? {'Retry-After': String(fault.retry_after)} : {};
        return sendError(req, res, fault.status, fault.code || codes[fault.status] || 'InternalError',
                         fault.message || 'Injected by the fault proxy', {}, headers);
      }
      if (fault && fault.kind === 'stall') {
        await sleep(fault.ms);
        if (clientGone) return;
      }
      const {up, upRes} = await this.forward(req, body);
      if (clientGone) { up.destroy(); return; }
      if (!fault || fault.kind === 'stall') {
        res.statusCode = upRes.statusCode;
        res.statusMessage = upRes.statusMessage;
        copyResponseHeaders(upRes, res);
        return pipeBody(upRes, res, req.method === 'HEAD');
      }
      if (fault.kind === 'reset_before_response' || fault.kind === 'close_before_response') {
        upRes.resume();
        if (fault.kind === 'reset_before_response') sock.resetAndDestroy();
        else sock.end();
        return;
      }
      // Faults inside the body: the whole upstream response is buffered, its head sent as is
      // (Content-Length correct), then part of the body.
      const full = await readAll(upRes);
      const cut = fault.after_bytes !== undefined ? Math.min(fault.after_bytes, full.length) : Math.floor(full.length / 2);
      sock.write(rawResponseHead(upRes));
      if (cut > 0) sock.write(full.subarray(0, cut));
      if (fault.kind === 'reset_mid_body') {
        sock.write('', () => sock.resetAndDestroy());
      } else if (fault.kind === 'short_body') {
        sock.end();
      } else if (fault.kind === 'stall_mid_body') {
        await sleep(fault.ms);
        if (!clientGone) sock.end(full.subarray(cut));
      }
    } catch (e) {
      console.error(`[s3server fault proxy] ${req.method} ${req.url}: ${e && e.stack || e}`);
      if (!res.headersSent && !clientGone) sendError(req, res, 502, 'BadGateway', 'fault proxy could not reach the server');
      else sock.destroy();
    }
  }
}

function upstreamHeadersKeepAuth(req) {
  const h = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const ln = req.rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(ln) || ln === 'expect' || ln === 'content-length') continue;
    // rawHeaders keeps every occurrence; an array makes Node send each one.
    if (h[ln] === undefined) h[ln] = req.rawHeaders[i + 1];
    else h[ln] = [].concat(h[ln], req.rawHeaders[i + 1]);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Startup

let servers = [];
let connectionCounter = 0;
let s3rverInstance = null;
let countTimer = null;
let opts = null;
let front = null;

function writeAtomic(file, text) {
  const tmp = `${file}.tmp${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function writeCount() {
  if (opts && opts.countFile && front) {
    try { writeAtomic(opts.countFile, `${front.total}\n`); } catch (e) { /* best effort */ }
  }
}

let shuttingDown = false;
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  writeCount();
  for (const s of servers) {
    s.close();
    if (s.closeAllConnections) s.closeAllConnections();
  }
  const done = () => process.exit(code);
  if (s3rverInstance) s3rverInstance.close().then(done, done);
  else done();
  setTimeout(done, 2000).unref();
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`s3server: ${e.message} (see --help)`);
    process.exit(2);
  }
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch (e) {
    console.error('s3server: DES is unavailable; run node with --openssl-legacy-provider (s3rver needs it for ListObjectsV2 paging)');
    process.exit(2);
  }
  let S3rver;
  try {
    S3rver = require('s3rver');
  } catch (e) {
    console.error(`s3server: cannot load s3rver (${e.message}); run tools/setup.sh (npm ci in test/s3server)`);
    process.exit(2);
  }
  patchDelimiterListing();
  fs.mkdirSync(opts.directory, {recursive: true});
  s3rverInstance = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: opts.directory,
    serviceEndpoint: opts.serviceEndpoint,
    configureBuckets: opts.buckets.map((name) => ({name})),
  });
  const upAddr = await s3rverInstance.run();

  front = new Front(opts, upAddr.port);
  const frontServer = http.createServer((req, res) => { front.handle(req, res); });
  frontServer.keepAliveTimeout = 120000;  // longer than clients' idle expiry: no surprise resets
  frontServer.headersTimeout = 130000;
  frontServer.on('connection', (sock) => { sock.shardyConnectionId = ++connectionCounter; });
  servers.push(frontServer);
  const port = await listen(frontServer, opts.port);

  const proxy = new FaultProxy(front, port);
  const proxyServer = http.createServer((req, res) => { proxy.handle(req, res); });
  proxyServer.keepAliveTimeout = 120000;
  proxyServer.headersTimeout = 130000;
  proxyServer.on('connection', (sock) => { sock.shardyConnectionId = ++connectionCounter; });
  servers.push(proxyServer);
  const faultPort = await listen(proxyServer, opts.faultPort);

  if (opts.countFile) countTimer = setInterval(writeCount, 200);
  if (opts.idleExitSeconds > 0) {
    setInterval(() => {
      if (Date.now() - front.lastActivity > opts.idleExitSeconds * 1000) {
        console.error(`s3server: idle for ${opts.idleExitSeconds}s, exiting`);
        shutdown(0);
      }
    }, 1000).unref();
  }

  const info = {
    pid: process.pid,
    endpoint: `http://127.0.0.1:${port}`,
    fault_endpoint: `http://127.0.0.1:${faultPort}`,
    port,
    fault_port: faultPort,
    region: opts.region,
    access_key: opts.accessKey,
    secret_key: opts.secretKey,
    session_credentials: opts.sessionCredentials.map((c) => ({access_key: c.accessKey, secret_key: c.secretKey, token: c.token})),
    buckets: opts.buckets,
    directory: path.resolve(opts.directory),
  };
  if (opts.portFile) writeAtomic(opts.portFile, `${port}\n`);
  if (opts.infoFile) writeAtomic(opts.infoFile, JSON.stringify(info, null, 2) + '\n');
  console.log(`s3server: listening on ${info.endpoint} (fault proxy ${info.fault_endpoint}, s3rver on ${upAddr.port})`);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));

if (require.main === module) {
  main().catch((e) => {
    console.error(`s3server: ${e && e.stack || e}`);
    process.exit(1);
  });
}

module.exports = {parseRange, canonicalUri, canonicalQuery, etagMatches, percentDecode, uriEncode};
