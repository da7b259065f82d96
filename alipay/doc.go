// Package alipay is Eligo's client for the Alipay OpenAPI v1 gateway (gateway.do): it signs
// requests (RSA2 or RSA, public-key or certificate mode), verifies responses against their raw
// bytes, decodes and classifies answers for the two methods Eligo uses, and guards the gateway
// behind a circuit breaker. Package alipay/sandbox is a faithful local gateway for tests and demos.
package alipay
