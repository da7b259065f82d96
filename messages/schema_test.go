package messages_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/messages"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemas compiles every embedded schema, keyed by name.
func schemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ids := map[string]string{}
	for _, name := range messages.SchemaNames() {
		b, err := messages.Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		onDisk, err := os.ReadFile(filepath.Join("schema", name+".json"))
		if err != nil || !bytes.Equal(b, onDisk) {
			t.Fatalf("embedded schema %s differs from schema/%s.json (%v)", name, name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" || !strings.HasSuffix(id, "/"+name+".json") {
			t.Fatalf("schema %s has $id %q", name, id)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	out := map[string]*jsonschema.Schema{}
	for name, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			t.Fatalf("compile schema %s: %v", name, err)
		}
		out[name] = s
	}
	if _, err := messages.Schema("nope"); err == nil {
		t.Error(`Schema("nope") did not fail`)
	}
	return out
}

func schemaValid(t *testing.T, s *jsonschema.Schema, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("test input is not JSON: %v", err)
	}
	return s.Validate(inst)
}

func TestGoldenMessagesMatchSchemas(t *testing.T) {
	sch := schemas(t)
	for _, g := range goldens() {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", g.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaValid(t, sch[g.schema], data); err != nil {
			t.Errorf("%s does not match schema %s: %v", g.file, g.schema, err)
		}
	}
}

// TestSchemasMatchGoTypes holds each schema to its Go type: the same property names as the
// type's JSON tags, and a property is required exactly when the Go field is not omitempty.
func TestSchemasMatchGoTypes(t *testing.T) {
	types := map[string]reflect.Type{
		messages.SchemaAnalyzeCheck:      reflect.TypeFor[messages.AnalyzeCheck](),
		messages.SchemaAnalyzeResult:     reflect.TypeFor[messages.AnalyzeResult](),
		messages.SchemaCrowdGroupCommand: reflect.TypeFor[messages.CrowdGroupCommand](),
		messages.SchemaCrowdGroupResult:  reflect.TypeFor[messages.CrowdGroupResult](),
		messages.SchemaRejection:         reflect.TypeFor[messages.Rejection](),
		messages.SchemaCacheInvalidate:   reflect.TypeFor[messages.CacheInvalidate](),
	}
	if len(types) != len(messages.SchemaNames()) {
		t.Fatalf("%d Go types for %d schemas", len(types), len(messages.SchemaNames()))
	}
	type shape struct{ Props, Required []string }
	shapeOfType := func(rt reflect.Type) shape {
		var s shape
		for f := range rt.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			s.Props = append(s.Props, name)
			if !strings.Contains(opts, "omitempty") {
				s.Required = append(s.Required, name)
			}
		}
		return s
	}
	shapeOfSchema := func(obj map[string]any) shape {
		var s shape
		for k := range obj["properties"].(map[string]any) {
			s.Props = append(s.Props, k)
		}
		for _, r := range obj["required"].([]any) {
			s.Required = append(s.Required, r.(string))
		}
		return s
	}
	sorted := cmp.Transformer("sort", func(in []string) []string { out := slices.Clone(in); sort.Strings(out); return out })
	for name, rt := range types {
		b, _ := messages.Schema(name)
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(shapeOfType(rt), shapeOfSchema(obj), sorted); diff != "" {
			t.Errorf("schema %s vs Go type %s (-go +schema):\n%s", name, rt.Name(), diff)
		}
		// The condition objects too.
		if defs, ok := obj["$defs"].(map[string]any); ok {
			if cond, ok := defs["condition"].(map[string]any); ok {
				if diff := cmp.Diff(shapeOfType(reflect.TypeFor[messages.Condition]()), shapeOfSchema(cond), sorted); diff != "" {
					t.Errorf("schema %s condition vs Go type Condition (-go +schema):\n%s", name, diff)
				}
			}
		}
	}
}

// TestSchemasAgreeWithDecoders runs the same inputs through the JSON Schemas and the Go
// decoders: a service that validates against the schema is never surprised by a rejection,
// and the schema rejects what the decoders reject.
func TestSchemasAgreeWithDecoders(t *testing.T) {
	sch := schemas(t)
	type input struct {
		name string
		muts []mutation
	}
	commands := []input{
		{"valid create", nil},
		{"seed example unit DAY (a warning only)", []mutation{setCond(0, "rule_unit", "DAY")}},
		{"delete without conditions", []mutation{set("operation", "DELETE"), set("condition_model_list", del{}), set("describe", del{})}},
		{"unknown operation", []mutation{set("operation", "PATCH")}},
		{"missing operation", []mutation{set("operation", del{})}},
		{"unknown operator_rule", []mutation{setCond(0, "operator_rule", "X")}},
		{"LAST_PAY_DATE without period", []mutation{setCond(0, "operator_rule", "LAST_PAY_DATE"), setCond(0, "rule_unit", "DAY"), setCond(0, "period", del{})}},
		{"TRADE_CNT without period", []mutation{setCond(0, "operator_rule", "TRADE_CNT"), setCond(0, "rule_unit", "COUNT"), setCond(0, "period", del{})}},
		{"empty period", []mutation{setCond(0, "period", "")}},
		{"period 45", []mutation{setCond(0, "period", "45")}},
		{"unknown logical_operator", []mutation{setCond(0, "logical_operator", "NE")}},
		{"unknown rule_unit", []mutation{setCond(0, "rule_unit", "MILE")}},
		{"operation_value 0", []mutation{setCond(0, "operation_value", "0")}},
		{"operation_value 0.0", []mutation{setCond(0, "operation_value", "0.0")}},
		{"operation_value 0.25", []mutation{setCond(0, "operation_value", "0.25")}},
		{"operation_value 1e3", []mutation{setCond(0, "operation_value", "1e3")}},
		{"operation_value -5", []mutation{setCond(0, "operation_value", "-5")}},
		{"operation_value number", []mutation{setCond(0, "operation_value", 5)}},
		{"create without describe", []mutation{set("describe", del{})}},
		{"update with empty describe", []mutation{set("operation", "UPDATE"), set("describe", "")}},
		{"update without conditions", []mutation{set("operation", "UPDATE"), set("condition_model_list", []any{})}},
		{"unknown operator_type", []mutation{set("operator_type", "BOSS")}},
		{"no operator_type", []mutation{set("operator_type", del{})}},
		{"shop_id with a dot", []mutation{set("shop_id", "a.b")}},
		{"shop_id with a non-breaking space", []mutation{set("shop_id", "a\u00a0b")}},
		{"shop_id with an ideographic space", []mutation{set("shop_id", "a\u3000b")}},
		{"shop_id in Chinese", []mutation{set("shop_id", "门店1")}},
		{"shop_id of 101 characters", []mutation{set("shop_id", strings.Repeat("s", 101))}},
		{"describe of 100 Chinese characters", []mutation{set("describe", strings.Repeat("爱", 100))}},
		{"describe of 101 Chinese characters", []mutation{set("describe", strings.Repeat("爱", 101))}},
		{"describe with a newline", []mutation{set("describe", "a\nb")}},
		{"describe only spaces", []mutation{set("describe", "   ")}},
		{"describe with an ideographic space inside", []mutation{set("describe", "熟客\u3000会员")}},
		{"describe with U+FFFD", []mutation{set("describe", "a\ufffdb")}},
		{"crowd_group_id only spaces", []mutation{set("crowd_group_id", " \u3000 ")}},
		{"operator_id only a non-breaking space", []mutation{set("operator_id", "\u00a0")}},
		{"delete with describe only spaces", []mutation{set("operation", "DELETE"), set("condition_model_list", del{}), set("describe", "  ")}},
		{"command_id with a space", []mutation{set("command_id", "c 1")}},
		{"command_id of 129 characters", []mutation{set("command_id", strings.Repeat("c", 129))}},
		{"app_auth_token of 41 characters", []mutation{set("app_auth_token", strings.Repeat("t", 41))}},
		{"missing crowd_group_id", []mutation{set("crowd_group_id", del{})}},
		{"empty operator_id", []mutation{set("operator_id", "")}},
		{"unknown fields", []mutation{set("x", []any{1}), setCond(0, "y", true)}},
		{"condition not an object", []mutation{set("condition_model_list", []any{"x"})}},
	}
	for _, in := range commands {
		t.Run("command/"+in.name, func(t *testing.T) {
			data := build(t, validCommand(), in.muts...)
			_, _, decErr := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{})
			schErr := schemaValid(t, sch[messages.SchemaCrowdGroupCommand], data)
			if (decErr == nil) != (schErr == nil) {
				t.Errorf("decoder error %v, schema error %v", decErr, schErr)
			}
		})
	}
	checks := []input{
		{"valid", nil},
		{"no optional fields", []mutation{set("biz_id", del{}), set("max_age_s", del{})}},
		{"max_age_s 0", []mutation{set("max_age_s", 0)}},
		{"max_age_s negative", []mutation{set("max_age_s", -1)}},
		{"max_age_s fraction", []mutation{set("max_age_s", 2.5)}},
		{"max_age_s over a year", []mutation{set("max_age_s", messages.MaxMaxAgeS+1)}},
		{"rule_uuid with >", []mutation{set("rule_uuid", "a>")}},
		{"rule_uuid with a tab", []mutation{set("rule_uuid", "a\tb")}},
		{"rule_uuid with U+0085", []mutation{set("rule_uuid", "a\u0085b")}},
		{"rule_uuid with U+FFFD", []mutation{set("rule_uuid", "a\ufffdb")}},
		{"rule_uuid in Chinese", []mutation{set("rule_uuid", "规则1")}},
		{"user_id number", []mutation{set("user_id", 2088)}},
		{"user_id with a space", []mutation{set("user_id", "2088 1")}},
		{"missing request_id", []mutation{set("request_id", del{})}},
		{"biz_id with a control character", []mutation{set("biz_id", "a\x01")}},
		{"biz_id of 128 characters", []mutation{set("biz_id", strings.Repeat("b", 128))}},
		{"biz_id only spaces", []mutation{set("biz_id", "  ")}},
		{"biz_id with U+FFFD", []mutation{set("biz_id", "\ufffd")}},
		{"biz_id with spaces around", []mutation{set("biz_id", " 2088|1 ")}},
		{"user_id in Chinese", []mutation{set("user_id", "用户")}},
	}
	for _, in := range checks {
		t.Run("check/"+in.name, func(t *testing.T) {
			data := build(t, validCheck(), in.muts...)
			_, decErr := messages.DecodeAnalyzeCheck(data)
			schErr := schemaValid(t, sch[messages.SchemaAnalyzeCheck], data)
			if (decErr == nil) != (schErr == nil) {
				t.Errorf("decoder error %v, schema error %v", decErr, schErr)
			}
		})
	}
}
