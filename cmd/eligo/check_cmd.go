package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

const defaultAwaitTimeout = 30 * time.Second

const checkDescription = `
Publish one rule-analyze check (alipay.promorulecenter.rule.analyze) and wait for its
result, which is printed as one JSON line. The check is validated before it is sent (a
problem found there is printed as a rejection and nothing is sent; --skip-validation sends it
anyway). Exit status: 0 on a result (triggered or not), 3 when the check was rejected, 4 when
no result came in time, 1 on other errors.

Example:
  eligo check --user-id 2088302535065344 --rule-uuid 7acd2b42617dc6165ca6637df06e6c3e`

func runCheck(ctx context.Context, c *cli, args []string) error {
	s := newSettings("check", c.getenv)
	var (
		nc          natsSettings
		check       messages.AnalyzeCheck
		maxAge      int64
		timeout     time.Duration
		raw         bool
		traceparent string
		tokenFile   string
	)
	bindNATS(s, &nc)
	s.str(&check.RequestID, "request-id", "", "", "request id (also the JetStream de-duplication id); default: a new random id")
	s.str(&check.UserID, "user-id", "", "", "Alipay user id (2088…)")
	s.str(&check.RuleUUID, "rule-uuid", "", "", "promo rule id")
	s.str(&check.BizID, "biz-id", "", "", "optional business id")
	s.fs.Int64Var(&maxAge, "max-age-s", -1, "oldest cached answer accepted, in seconds; 0 forces a fresh call; -1 uses the worker's default")
	s.duration(&timeout, "timeout", "", defaultAwaitTimeout, "how long to wait for the result")
	s.boolean(&raw, "skip-validation", "", false, "send the check as given, without validating it first (to see the worker's rejection)")
	s.str(&traceparent, "traceparent", "", "", "W3C traceparent to send with the check")
	s.str(&tokenFile, "app-auth-token-file", "", "", "file holding the ISV app_auth_token of the merchant the check is made for (never printed)")
	if done, err := c.parseOrHelp(s, args, "eligo check --user-id ID --rule-uuid UUID [flags]", checkDescription); done || err != nil {
		return err
	}
	var errs []error
	if check.UserID == "" {
		errs = append(errs, s.required("user-id", "the Alipay user id"))
	}
	if check.RuleUUID == "" {
		errs = append(errs, s.required("rule-uuid", "the promo rule id"))
	}
	if len(s.args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: check takes only flags", s.args))
	}
	if timeout <= 0 {
		errs = append(errs, s.invalid("timeout", "must be positive"))
	}
	if traceparent != "" && !client.ValidTraceparent(traceparent) {
		errs = append(errs, s.invalid("traceparent", "%q is not a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)", traceparent))
	}
	if maxAge < -1 && !raw {
		errs = append(errs, s.invalid("max-age-s", "must be 0 or more seconds (or -1 for the worker's default)"))
	}
	if err := checkConfig(nc.validate(s), errs); err != nil {
		return usageError{err}
	}
	if check.RequestID == "" {
		check.RequestID = newID("check")
	}
	if maxAge >= 0 || raw && maxAge != -1 {
		check.MaxAgeS = &maxAge
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("read --app-auth-token-file: %w", err)
		}
		check.AppAuthToken = strings.TrimSpace(string(tok))
	}
	conn, err := connectNATS(ctx, nc, "eligo-check", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if raw {
		return publishRaw(ctx, c, conn, nc, messages.KindAnalyze, check.RequestID, check, timeout)
	}
	cl, err := client.New(conn, client.Config{Prefix: nc.Prefix, Timeout: timeout})
	if err != nil {
		return err
	}
	var opts []client.CallOption
	if traceparent != "" {
		opts = append(opts, client.WithTraceparent(traceparent, ""))
	}
	res, err := cl.Check(ctx, check, opts...)
	return printClientAnswer(c, "check", check.RequestID, res, err)
}

// printClientAnswer prints a result or a rejection as one JSON line and maps it to the exit
// status: 0 result, exitRejected rejection (also one found before sending), exitTimeout.
func printClientAnswer(c *cli, what, id string, res any, err error) error {
	var rej *client.RejectedError
	switch {
	case errors.As(err, &rej):
		b, merr := json.Marshal(rej.Rejection)
		if merr != nil {
			return fmt.Errorf("encode rejection: %w", merr)
		}
		fmt.Fprintf(c.stdout, "%s\n", b)
		return &exitError{code: exitRejected, err: rej}
	case errors.Is(err, client.ErrTimeout):
		return &exitError{code: exitTimeout, err: fmt.Errorf("%w; it stays queued and its result will reach the results stream (eligo status shows workers and backlog, eligo watch --since shows results)", err)}
	case err != nil:
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode %s result: %w", what, err)
	}
	fmt.Fprintf(c.stdout, "%s\n", b)
	return nil
}

// publishRaw publishes payload without validating it and waits for the answer.
func publishRaw(ctx context.Context, c *cli, conn *nats.Conn, nc natsSettings, kind messages.Kind, id string, payload any, timeout time.Duration) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	return publishBytes(ctx, c, conn, nc, kind, id, data, timeout)
}

// publishBytes publishes data exactly as given and waits for the answer.
func publishBytes(ctx context.Context, c *cli, conn *nats.Conn, nc natsSettings, kind messages.Kind, id string, data []byte, timeout time.Duration) error {
	cl, err := client.New(conn, client.Config{Prefix: nc.Prefix, Timeout: timeout})
	if err != nil {
		return err
	}
	res, err := cl.PublishRaw(ctx, kind, id, data)
	return printClientAnswer(c, string(kind), id, json.RawMessage(res), err)
}

const crowdGroupDescription = `
Publish one crowd-group command (koubei.catering.crowdgroup.condition.set) and wait for its
result, printed as one JSON line. The command comes from flags, from --file cmd.json, or from
standard input with --file - (or a lone "-" argument). Flags given together with a file
override the file's fields. Exit status as for eligo check: 0 result, 3 rejected, 4 timeout.

A condition is given as --condition rule=TRADE_AMT,op=GT,value=100,unit=YUAN,period=30
(repeat the flag for several conditions).

Example:
  eligo crowdgroup --operation CREATE --shop-id 2018032400077000000048031040 \
    --crowd-group-id regulars01 --describe regulars --operator-id 2088222807744402 \
    --condition rule=TRADE_AMT,op=GT,value=100,unit=YUAN,period=30`

// conditionList is a repeatable --condition flag.
type conditionList []messages.Condition

func (l *conditionList) String() string { return fmt.Sprint(len(*l), " conditions") }

func (l *conditionList) Set(v string) error {
	var cond messages.Condition
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", kv)
		}
		switch k {
		case "rule", "operator_rule":
			cond.OperatorRule = val
		case "op", "logical_operator":
			cond.LogicalOperator = val
		case "value", "operation_value":
			cond.OperationValue = val
		case "unit", "rule_unit":
			cond.RuleUnit = val
		case "period":
			cond.Period = val
		default:
			return fmt.Errorf("unknown key %q (use rule, op, value, unit, period)", k)
		}
	}
	*l = append(*l, cond)
	return nil
}

func runCrowdGroup(ctx context.Context, c *cli, args []string) error {
	return runCrowdGroupFrom(ctx, c, args, os.Stdin)
}

// crowdGroupInput reads a crowd-group command from a file or standard input and flags.
type crowdGroupInput struct {
	flagCmd    messages.CrowdGroupCommand
	conds      conditionList
	file       string
	tokenFile  string
	fieldFlags map[string]*string
	// data is the file's bytes as read, when no flag changes them: what --skip-validation
	// sends.
	data []byte
}

func (in *crowdGroupInput) bind(s *settings) {
	in.fieldFlags = map[string]*string{}
	s.str(&in.file, "file", "", "", "read the command (JSON) from this file; - reads standard input")
	for _, f := range []struct {
		name  string
		p     *string
		usage string
	}{
		{"command-id", &in.flagCmd.CommandID, "command id (also the JetStream de-duplication id); default: a new random id"},
		{"operation", &in.flagCmd.Operation, "CREATE, UPDATE, DELETE or RETRIEVE"},
		{"shop-id", &in.flagCmd.ShopID, "Koubei shop id"},
		{"crowd-group-id", &in.flagCmd.CrowdGroupID, "crowd group id"},
		{"describe", &in.flagCmd.Describe, "crowd group description (required for CREATE and UPDATE)"},
		{"operator-id", &in.flagCmd.OperatorID, "operator id"},
		{"operator-type", &in.flagCmd.OperatorType, "MER, MER_OPERATOR, PROVIDER or PROVIDER_STAFF (default MER)"},
	} {
		s.str(f.p, f.name, "", "", f.usage)
		in.fieldFlags[f.name] = f.p
	}
	s.fs.Var(&in.conds, "condition", "a condition: rule=…,op=…,value=…,unit=…[,period=…] (repeatable)")
	s.str(&in.tokenFile, "app-auth-token-file", "", "", "file holding the ISV app_auth_token (never printed)")
}

// command builds the command: the file (if any), then the flags given on top.
func (in *crowdGroupInput) command(s *settings, stdin io.Reader) (messages.CrowdGroupCommand, error) {
	switch {
	case len(s.args) == 1 && s.args[0] == "-" && in.file == "":
		in.file = "-"
	case len(s.args) > 0:
		return messages.CrowdGroupCommand{}, usageError{fmt.Errorf("unexpected arguments %q (use --file or -)", s.args)}
	}
	var cmd messages.CrowdGroupCommand
	if in.file != "" {
		var data []byte
		var err error
		if in.file == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(in.file)
		}
		if err != nil {
			return cmd, fmt.Errorf("read command: %w", err)
		}
		if err := json.Unmarshal(data, &cmd); err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				return cmd, usageError{fmt.Errorf("command in %s is not valid JSON: %w", in.file, err)}
			}
			// JSON of the wrong shape (a number where the doc says String, …): the worker's
			// own decoder names every such field.
			if _, _, derr := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{}); derr != nil {
				err = derr
			}
			in.data = data
			return cmd, &fileRejectedError{err: err}
		}
		in.data = data
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name := range given {
		if _, field := in.fieldFlags[name]; field || name == "condition" || name == "app-auth-token-file" {
			in.data = nil // the flags change the file's command: it is sent re-encoded
		}
	}
	overlay := map[string]*string{
		"command-id": &cmd.CommandID, "operation": &cmd.Operation, "shop-id": &cmd.ShopID,
		"crowd-group-id": &cmd.CrowdGroupID, "describe": &cmd.Describe, "operator-id": &cmd.OperatorID,
		"operator-type": &cmd.OperatorType,
	}
	for name, dst := range overlay {
		if given[name] {
			*dst = *in.fieldFlags[name]
		}
	}
	if len(in.conds) > 0 {
		cmd.ConditionModelList = in.conds
	}
	if in.tokenFile != "" {
		tok, err := os.ReadFile(in.tokenFile)
		if err != nil {
			return cmd, fmt.Errorf("read --app-auth-token-file: %w", err)
		}
		cmd.AppAuthToken = strings.TrimSpace(string(tok))
	}
	if in.file == "" && cmd.Operation == "" {
		return cmd, usageError{errors.New("no command given: pass --file cmd.json, - for standard input, or at least --operation, --shop-id, --crowd-group-id and --operator-id")}
	}
	return cmd, nil
}

// fileRejectedError is a command file that is JSON but not a crowd-group command; its
// error is a *messages.ValidationError when the decoder could name the fields.
type fileRejectedError struct{ err error }

func (e *fileRejectedError) Error() string { return e.err.Error() }
func (e *fileRejectedError) Unwrap() error { return e.err }

// commandID is the command_id of a command file sent as is, when it has a usable one.
func commandID(data []byte) string {
	var head struct {
		CommandID string `json:"command_id"`
	}
	if json.Unmarshal(data, &head) != nil || !messages.ValidID(head.CommandID) {
		return ""
	}
	return head.CommandID
}

func runCrowdGroupFrom(ctx context.Context, c *cli, args []string, stdin io.Reader) error {
	s := newSettings("crowdgroup", c.getenv)
	var (
		nc      natsSettings
		in      crowdGroupInput
		timeout time.Duration
		raw     bool
	)
	bindNATS(s, &nc)
	in.bind(s)
	s.duration(&timeout, "timeout", "", defaultAwaitTimeout, "how long to wait for the result")
	s.boolean(&raw, "skip-validation", "", false, "send the command as given, without validating it first (to see the worker's rejection); a --file without overriding flags is sent byte for byte")
	if done, err := c.parseOrHelp(s, args, "eligo crowdgroup [--file cmd.json | -] [flags]", crowdGroupDescription); done || err != nil {
		return err
	}
	if err := checkConfig(nc.validate(s)); err != nil {
		return usageError{err}
	}
	cmd, err := in.command(s, stdin)
	var fileErr *fileRejectedError
	switch {
	case errors.As(err, &fileErr) && !raw:
		var ve *messages.ValidationError
		if errors.As(err, &ve) {
			return printClientAnswer(c, "command", ve.ID, nil, &client.RejectedError{Rejection: ve.Rejection(), Local: true})
		}
		return usageError{fmt.Errorf("command in %s: %w", in.file, err)}
	case fileErr != nil:
		// --skip-validation: sent as is below, for the worker to judge.
	case err != nil:
		return err
	}
	sendFile := raw && in.data != nil
	if sendFile {
		if cmd.CommandID = commandID(in.data); cmd.CommandID == "" {
			return usageError{fmt.Errorf("--skip-validation sends %s as it is, so it needs a command_id of printable ASCII (the answer is found by it)", in.file)}
		}
	}
	if cmd.CommandID == "" {
		cmd.CommandID = newID("cmd")
	}
	conn, err := connectNATS(ctx, nc, "eligo-crowdgroup", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if sendFile {
		return publishBytes(ctx, c, conn, nc, messages.KindCrowdGroup, cmd.CommandID, in.data, timeout)
	}
	if raw {
		return publishRaw(ctx, c, conn, nc, messages.KindCrowdGroup, cmd.CommandID, cmd, timeout)
	}
	cl, err := client.New(conn, client.Config{Prefix: nc.Prefix, Timeout: timeout})
	if err != nil {
		return err
	}
	res, err := cl.CrowdGroup(ctx, cmd)
	for _, w := range res.Warnings {
		fmt.Fprintf(c.stderr, "warning: %s: %s (%s)\n", w.Field, w.Message, w.Code)
	}
	return printClientAnswer(c, "command", cmd.CommandID, res, err)
}
