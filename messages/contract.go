package messages

import (
	"embed"
	"fmt"
)

// contractFS holds the language-neutral contract: the AsyncAPI document and one JSON Schema
// per message. It is read-only.
//
//go:embed asyncapi.yaml schema/*.json
var contractFS embed.FS

// Schema names, one per wire message; Schema(name) returns schema/<name>.json.
const (
	SchemaAnalyzeCheck      = "analyze_check"
	SchemaAnalyzeResult     = "analyze_result"
	SchemaCrowdGroupCommand = "crowdgroup_command"
	SchemaCrowdGroupResult  = "crowdgroup_result"
	SchemaRejection         = "rejection"
	SchemaCacheInvalidate   = "cache_invalidate"
)

// SchemaNames lists every message's schema name.
func SchemaNames() []string {
	return []string{SchemaAnalyzeCheck, SchemaAnalyzeResult, SchemaCrowdGroupCommand,
		SchemaCrowdGroupResult, SchemaRejection, SchemaCacheInvalidate}
}

// Schema returns the JSON Schema (draft-07) of the message called name (one of the
// Schema… constants), as published in this package's schema directory.
func Schema(name string) ([]byte, error) {
	b, err := contractFS.ReadFile("schema/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("messages: no schema %q: %w", name, err)
	}
	return b, nil
}

// AsyncAPI returns the AsyncAPI 3.0 document describing Eligo's channels, messages and
// headers (with the default subject prefix "eligo").
func AsyncAPI() []byte {
	b, err := contractFS.ReadFile("asyncapi.yaml")
	if err != nil {
		panic("messages: asyncapi.yaml is not embedded: " + err.Error()) // cannot happen: go:embed checks it at build time
	}
	return b
}
