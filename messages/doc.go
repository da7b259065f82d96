// Package messages is Eligo's wire contract: the typed messages services exchange with
// Eligo over NATS, their validation exactly as the Alipay method docs define each field,
// subject builders and header names. It imports only the standard library.
//
// Subjects (prefix "eligo" by default, see Subjects):
//
//	eligo.check.analyze                 services → Eligo  AnalyzeCheck
//	eligo.cmd.crowdgroup                services → Eligo  CrowdGroupCommand
//	eligo.cmd.cache.invalidate          services → Eligo  CacheInvalidate {"rule_uuid":"…"}
//	eligo.result.analyze.<rule_uuid>    Eligo → services  AnalyzeResult
//	eligo.result.crowdgroup.<shop_id>   Eligo → services  CrowdGroupResult
//	eligo.rejected.<kind>               Eligo → services  Rejection
//	eligo.dlq.<kind>                    dead letters (original payload, reason in headers)
//
// # Decoding
//
// Every input is read by a Decode… function that unmarshals and validates in one step:
// DecodeAnalyzeCheck, DecodeCrowdGroupCommand, DecodeCacheInvalidate (and, for subscribers,
// DecodeAnalyzeResult, DecodeCrowdGroupResult, DecodeRejection). Decoders are strict about
// types (a number where the Alipay doc says String is an error), tolerant of unknown fields,
// and collect every problem into one *ValidationError, each FieldError naming the field's
// path ("condition_model_list[2].period"), a code (CodeParamEmpty, CodeInvalidParameter, …)
// and the rule that was broken. ValidationError.Rejection builds the event that reports it.
// Limits (MaxMessageSize, MaxDepth, MaxConditions, field lengths, subject-safe tokens, ids
// usable as Nats-Msg-Id) keep a worker safe from hostile input.
//
// # Encoding
//
// EncodeAnalyzeResult, EncodeCrowdGroupResult and EncodeRejection (and their Append…
// forms) write exactly what json.Marshal writes, without reflection.
//
// # Language-neutral contract
//
// The same contract, for services not written in Go, is in asyncapi.yaml (AsyncAPI 3.0:
// channels, messages, headers) and schema/*.json (one JSON Schema per message), next to this
// package's source; Schema and AsyncAPI return the embedded copies. Go services use the
// client sub-package (messages/client), which speaks the request/reply protocol for them.
package messages
