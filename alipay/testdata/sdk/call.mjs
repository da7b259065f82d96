// Calls an Alipay v1 gateway (normally Eligo's sandbox) through the official Node SDK
// (alipay-sdk, version pinned in package.json) with response signature verification on, and
// prints what the SDK returned. Used by the alipay/sandbox interoperability test.
//
// Input (stdin), one JSON object:
//   {"gateway": "http://127.0.0.1:PORT/gateway.do",
//    "runs": [{"name": "...",
//              "config": {...AlipaySdk options: appId, privateKey, signType, alipayPublicKey,
//                         or appCertContent / alipayPublicCertContent / alipayRootCertContent...},
//              "calls": [{"method": "alipay.promorulecenter.rule.analyze",
//                         "params": {"user_id": "...", "rule_uuid": "..."}}, ...]}]}
// Output (stdout), one JSON object:
//   {"runs": [{"name": "...", "results": [{"ok": true, "response": {...node, snake_case...}}
//                                        | {"ok": false, "error": "..."}]}]}
// The SDK stamps requests with the process's local time; run with TZ=Asia/Shanghai.
import { AlipaySdk } from 'alipay-sdk';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { gateway, runs } = JSON.parse(input);

const out = { runs: [] };
for (const run of runs) {
  const sdk = new AlipaySdk({ ...run.config, gateway, camelcase: false, timeout: 10000 });
  const results = [];
  for (const call of run.calls) {
    try {
      const response = await sdk.exec(call.method, call.params, { validateSign: true });
      delete response.traceId;
      results.push({ ok: true, response });
    } catch (err) {
      results.push({ ok: false, error: String(err?.message ?? err).slice(0, 500) });
    }
  }
  out.runs.push({ name: run.name, results });
}
process.stdout.write(JSON.stringify(out) + '\n');
