// Signs one gateway request with the official Alipay Node SDK (alipay-sdk, pinned in
// package.json) so Eligo's Go tests can compare the SDK's `sign` with the Go client's.
//
//   node sign.mjs < request.json
//
// stdin:  {"method": "...", "privateKey": "<PEM or bare base64>", "keyType": "PKCS1"|"PKCS8",
//          "params": {every request parameter the Go client sent except sign, as raw strings}}
// stdout: {"params": {the parameters the SDK would send, sign included, URL-decoded}}
// A JSON array of such requests gets a JSON array of answers, in order (one node start).
//
// RSASSA-PKCS1-v1_5 is deterministic, so for the same parameters (the timestamp is passed in,
// not taken from the clock) the SDK's sign and the Go client's must be byte-identical.
import { AlipaySdk } from 'alipay-sdk';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const parsed = JSON.parse(input);

function sign(req) {
  const p = { ...req.params };
  const cfg = {
    appId: p.app_id,
    privateKey: req.privateKey,
    keyType: req.keyType || 'PKCS1',
    signType: p.sign_type || 'RSA2',
    charset: p.charset || 'utf-8',
    version: p.version || '1.0',
  };
  for (const k of ['app_id', 'sign_type', 'charset', 'version', 'method', 'sign']) delete p[k];
  if (!p.timestamp) {
    process.stderr.write('params.timestamp is required\n');
    process.exit(2);
  }
  // Given as biz_content the SDK would JSON.stringify the value again. Under the key
  // "BizContent" the 4.14.0 SDK passes the exact string through and snake-cases the key to
  // biz_content.
  if (typeof p.biz_content === 'string') {
    p.BizContent = p.biz_content;
    delete p.biz_content;
  }
  const sdk = new AlipaySdk(cfg);
  const query = sdk.sdkExecute(req.method, p, { bizContentAutoSnakeCase: false });
  const params = {};
  for (const kv of query.split('&')) {
    const i = kv.indexOf('=');
    params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
  }
  return { params };
}

const out = Array.isArray(parsed) ? parsed.map(sign) : sign(parsed);
process.stdout.write(JSON.stringify(out) + '\n');
