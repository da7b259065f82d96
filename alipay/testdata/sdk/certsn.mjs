// Computes certificate-mode serial numbers with the official Alipay Node SDK (alipay-sdk,
// pinned in package.json), to compare with Eligo's Go CertSN and RootCertSN.
//
//   node certsn.mjs < certs.json
//
// stdin:  {"appCert": "<PEM>", "alipayPublicCert": "<PEM>", "alipayRootCert": "<PEM bundle>"}
// stdout: {"appCertSn": "...", "alipayCertSn": "...", "alipayRootCertSn": "..."}
// A JSON array of such requests gets a JSON array of answers, in order (one node start).
import { AlipaySdk } from 'alipay-sdk';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const parsed = JSON.parse(input);

function certSN(req) {
  const sdk = new AlipaySdk({
    appId: 'certsn-only', privateKey: 'unused',
    appCertContent: req.appCert, alipayPublicCertContent: req.alipayPublicCert, alipayRootCertContent: req.alipayRootCert,
  });
  return {
    appCertSn: sdk.config.appCertSn,
    alipayCertSn: sdk.config.alipayCertSn,
    alipayRootCertSn: sdk.config.alipayRootCertSn,
  };
}

const out = Array.isArray(parsed) ? parsed.map(certSN) : certSN(parsed);
process.stdout.write(JSON.stringify(out) + '\n');
