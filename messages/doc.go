// Package messages is Eligo's wire contract: the typed messages services exchange with
// Eligo over NATS, their validation exactly as the Alipay method docs define each field,
// subject builders and header names. It imports only the standard library.
//
// Subjects (prefix "eligo" by default):
//
//	eligo.check.analyze                 services → Eligo  AnalyzeCheck
//	eligo.cmd.crowdgroup                services → Eligo  CrowdGroupCommand
//	eligo.cmd.cache.invalidate          services → Eligo  {"rule_uuid":"…"}
//	eligo.result.analyze.<rule_uuid>    Eligo → services  AnalyzeResult
//	eligo.result.crowdgroup.<shop_id>   Eligo → services  CrowdGroupResult
//	eligo.rejected.<kind>               Eligo → services  Rejection
//	eligo.dlq.<kind>                    dead letters (original payload, reason in headers)
package messages
