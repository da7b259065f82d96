// Computes certificate-mode serial numbers with the official Alipay Node SDK (alipay-sdk,
// pinned in package.json), to compare with Eligo's Go CertSN and RootCertSN.
//
//   node certsn.mjs < certs.json
//
// stdin:  {"appCert": "<PEM>", "alipayPublicCert": "<PEM>", "alipayRootCert": "<PEM bundle>"}
// stdout: {"appCertSn": "...", "alipayCertSn": "...", "alipayRootCertSn": "..."}
import { AlipaySdk } from 'alipay-sdk';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);

const sdk = new AlipaySdk({
  appId: 'certsn-only', privateKey: 'unused',
  appCertContent: req.appCert, alipayPublicCertContent: req.alipayPublicCert, alipayRootCertContent: req.alipayRootCert,
});
process.stdout.write(JSON.stringify({
  appCertSn: sdk.config.appCertSn,
  alipayCertSn: sdk.config.alipayCertSn,
  alipayRootCertSn: sdk.config.alipayRootCertSn,
}) + '\n');
