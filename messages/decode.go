package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("messages: invalid message")

// ValidationError lists every problem found in a message.
type ValidationError struct {
	Kind Kind
	// ID is the message's request_id / command_id when it could be read, else "".
	ID     string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return fmt.Sprintf("invalid %s message: %s", e.Kind, strings.Join(parts, "; "))
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// DecodeOptions tunes validation.
type DecodeOptions struct {
	// StrictUnits rejects a rule_unit that differs from the operator_rule's documented unit
	// (by default that is only a warning).
	StrictUnits bool
}

// CacheInvalidate asks Eligo to drop every cached answer for a rule.
type CacheInvalidate struct {
	RuleUUID string `json:"rule_uuid"`
}

// DecodeAnalyzeCheck decodes and validates an analyze check.
// PRELIMINARY: full validation lands with the messages package work.
func DecodeAnalyzeCheck(data []byte) (AnalyzeCheck, error) {
	var c AnalyzeCheck
	if err := json.Unmarshal(data, &c); err != nil {
		return c, &ValidationError{Kind: KindAnalyze, Errors: []FieldError{{Code: "INVALID_JSON", Message: err.Error()}}}
	}
	return c, nil
}

// DecodeCrowdGroupCommand decodes and validates a crowd-group command. warnings lists
// problems that do not reject the command (e.g. a unit that differs from the rule's unit).
// PRELIMINARY: full validation lands with the messages package work.
func DecodeCrowdGroupCommand(data []byte, opts DecodeOptions) (cmd CrowdGroupCommand, warnings []FieldError, err error) {
	if err := json.Unmarshal(data, &cmd); err != nil {
		return cmd, nil, &ValidationError{Kind: KindCrowdGroup, Errors: []FieldError{{Code: "INVALID_JSON", Message: err.Error()}}}
	}
	if cmd.OperatorType == "" {
		cmd.OperatorType = "MER"
	}
	return cmd, nil, nil
}

// DecodeCacheInvalidate decodes and validates a cache invalidation command.
// PRELIMINARY: full validation lands with the messages package work.
func DecodeCacheInvalidate(data []byte) (CacheInvalidate, error) {
	var c CacheInvalidate
	if err := json.Unmarshal(data, &c); err != nil {
		return c, &ValidationError{Kind: "cache", Errors: []FieldError{{Code: "INVALID_JSON", Message: err.Error()}}}
	}
	return c, nil
}
