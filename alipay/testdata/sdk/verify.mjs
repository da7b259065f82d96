// Verifies one gateway answer with the official Alipay Node SDK (alipay-sdk, pinned in
// package.json): the SDK's own extraction of the signed node plus its signature check.
//
//   node verify.mjs < answer.json
//
// stdin:  {"method": "...", "body": "<raw HTTP body>", "alipayPublicKey": "<PEM or base64>",
//          "signType": "RSA2"|"RSA"}
// stdout: {"ok": true|false, "extracted": "<text the SDK verified>", "error": "..."}
// A JSON array of such requests gets a JSON array of answers, in order (one node start).
import { AlipaySdk } from 'alipay-sdk';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const parsed = JSON.parse(input);

function verify(req) {
  const key = `${req.method.replaceAll('.', '_')}_response`;
  const sdk = new AlipaySdk({
    appId: 'verify-only', privateKey: 'unused', alipayPublicKey: req.alipayPublicKey,
    signType: req.signType || 'RSA2',
  });
  let sign;
  try { sign = JSON.parse(req.body).sign; } catch { /* not JSON */ }
  const extracted = sdk.getSignStr(req.body, key);
  const out = { ok: false, extracted };
  if (typeof sign !== 'string') {
    out.error = 'no sign field';
  } else {
    try {
      sdk.checkResponseSign(req.body, key, sign, '');
      out.ok = true;
    } catch (e) {
      out.error = String(e.message).slice(0, 200);
    }
  }
  return out;
}

const out = Array.isArray(parsed) ? parsed.map(verify) : verify(parsed);
process.stdout.write(JSON.stringify(out) + '\n');
