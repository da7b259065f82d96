package messages_test

import (
	"encoding/json"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/messages"
	"go.yaml.in/yaml/v3"
)

type asyncDoc struct {
	AsyncAPI string `yaml:"asyncapi"`
	Channels map[string]struct {
		Address  *string                      `yaml:"address"`
		Messages map[string]map[string]string `yaml:"messages"`
	} `yaml:"channels"`
	Operations map[string]struct {
		Action string `yaml:"action"`
	} `yaml:"operations"`
	Components struct {
		Messages map[string]struct {
			Headers map[string]string `yaml:"headers"`
			Payload struct {
				SchemaFormat string            `yaml:"schemaFormat"`
				Schema       map[string]string `yaml:"schema"`
			} `yaml:"payload"`
			Examples []struct {
				Headers map[string]string `yaml:"headers"`
				Payload map[string]any    `yaml:"payload"`
			} `yaml:"examples"`
		} `yaml:"messages"`
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func TestAsyncAPI(t *testing.T) {
	onDisk, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(messages.AsyncAPI()) {
		t.Fatal("embedded asyncapi.yaml differs from the file")
	}
	var doc asyncDoc
	if err := yaml.Unmarshal(onDisk, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi = %q, want 3.0.0", doc.AsyncAPI)
	}

	t.Run("channel addresses are the subjects", func(t *testing.T) {
		s := messages.Subjects{}
		want := map[string]string{
			"analyzeCheck":      s.AnalyzeCheck(),
			"crowdGroupCommand": s.CrowdGroupCommand(),
			"cacheInvalidate":   s.CacheInvalidate(),
			"analyzeResult":     s.AnalyzeResult("{rule_uuid}"),
			"crowdGroupResult":  s.CrowdGroupResult("{shop_id}"),
			"rejected":          s.Rejected("{kind}"),
			"deadLetter":        s.DeadLetter("{kind}"),
		}
		for name, addr := range want {
			ch, ok := doc.Channels[name]
			if !ok || ch.Address == nil || *ch.Address != addr {
				t.Errorf("channel %s address = %v, want %q", name, ch.Address, addr)
			}
		}
		if ch, ok := doc.Channels["replyInbox"]; !ok || ch.Address != nil {
			t.Error("replyInbox channel missing or has a fixed address")
		}
	})

	sch := schemas(t)
	t.Run("payloads are the schemas and examples match them", func(t *testing.T) {
		seen := map[string]bool{}
		for name, m := range doc.Components.Messages {
			ref := m.Payload.Schema["$ref"]
			if ref == "" {
				if name != "DeadLetter" {
					t.Errorf("message %s has no payload schema", name)
				}
				continue
			}
			schemaName := strings.TrimSuffix(path.Base(ref), ".json")
			s, ok := sch[schemaName]
			if !ok || ref != "./schema/"+schemaName+".json" {
				t.Errorf("message %s payload $ref %q is not one of the schemas", name, ref)
				continue
			}
			seen[schemaName] = true
			if m.Payload.SchemaFormat != "application/schema+json;version=draft-07" {
				t.Errorf("message %s schemaFormat = %q", name, m.Payload.SchemaFormat)
			}
			if len(m.Examples) == 0 {
				t.Errorf("message %s has no example", name)
			}
			for i, ex := range m.Examples {
				b, err := json.Marshal(ex.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if err := schemaValid(t, s, b); err != nil {
					t.Errorf("message %s example %d does not match its schema: %v", name, i, err)
				}
			}
		}
		for _, n := range messages.SchemaNames() {
			if !seen[n] {
				t.Errorf("schema %s is not used by any AsyncAPI message", n)
			}
		}
	})

	t.Run("every header is documented", func(t *testing.T) {
		var documented []string
		for _, s := range doc.Components.Schemas {
			for h := range s.Properties {
				documented = append(documented, h)
			}
		}
		for _, h := range []string{messages.HeaderMsgID, messages.HeaderReplyTo, messages.HeaderTraceparent, messages.HeaderTracestate,
			messages.HeaderKind, messages.HeaderReason, messages.HeaderReasonCode, messages.HeaderOriginalSubject,
			messages.HeaderOriginalID, messages.HeaderOriginalSeq, messages.HeaderReplay} {
			if !slices.Contains(documented, h) {
				t.Errorf("header %s is not in asyncapi.yaml", h)
			}
		}
	})

	t.Run("every error code is documented", func(t *testing.T) {
		text := string(onDisk)
		for _, c := range []string{messages.CodeParamEmpty, messages.CodeInvalidParameter, messages.CodeInvalidType, messages.CodeInvalidJSON,
			messages.CodeInvalidUTF8, messages.CodeTooLarge, messages.CodeTooDeep, messages.CodeTooLong, messages.CodeTooMany,
			messages.CodeUnsafeSubjectToken, messages.CodeUnitMismatch} {
			if !strings.Contains(text, "`"+c+"`") {
				t.Errorf("code %s is not in asyncapi.yaml", c)
			}
		}
	})
}
