package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

const callDescription = `
Call the configured Alipay gateway directly, without NATS, and print the verified answer as
JSON. For debugging credentials and the protocol. Uses the same ELIGO_ALIPAY_* settings as
the worker.

  eligo call analyze --user-id ID --rule-uuid UUID [--biz-id B]
  eligo call crowdgroup [--file cmd.json | -] [command flags as for eligo crowdgroup]

A refused call prints the gateway's code, sub_code and class and exits with status 1.`

// newAlipayClient loads the credentials named by c and returns a client, paced by budget when
// it is not nil and tracing its calls when tp is not nil. Errors name the file and the setting
// to fix, never the key material.
func newAlipayClient(c alipaySettings, breaker alipay.BreakerSettings, budget alipay.Budget, logger *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*alipay.Client, error) {
	creds, err := alipay.LoadCredentials(alipay.Files{
		PrivateKey:      c.PrivateKeyFile,
		AlipayPublicKey: c.PublicKeyFile,
		AppCert:         c.AppCertFile,
		AlipayCert:      c.CertFile,
		AlipayRootCert:  c.RootCertFile,
	})
	if err != nil {
		// A key file that cannot be used is wrong configuration (exit 2), like a missing one.
		return nil, &configError{errs: []error{fmt.Errorf("alipay credentials (ELIGO_ALIPAY_*_FILE): %w", err)}}
	}
	cfg := alipay.Config{
		Gateway:     c.Gateway,
		AppID:       c.AppID,
		Credentials: creds,
		SignType:    alipay.SignType(c.SignType),
		Timeout:     c.Timeout,
		Logger:      logger,
		Registerer:  reg,
		Breaker:     breaker,
		Budget:      budget,
		// nil: no spans (tracing off).
		TracerProvider: tp,
	}
	if off := c.ClockOffset; off != 0 {
		cfg.Now = func() time.Time { return time.Now().Add(off) }
	}
	client, err := alipay.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("alipay client: %w", err)
	}
	return client, nil
}

func runCall(ctx context.Context, c *cli, args []string) error {
	return runCallFrom(ctx, c, args, os.Stdin)
}

func runCallFrom(ctx context.Context, c *cli, args []string, stdin io.Reader) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		s := newSettings("call", c.getenv)
		var ac alipaySettings
		bindAlipay(s, &ac)
		if done, err := c.parseOrHelp(s, args, "eligo call analyze|crowdgroup [flags]", callDescription); done || err != nil {
			return err
		}
		return usageError{errors.New("call: missing method (analyze or crowdgroup)")}
	}
	method, args := args[0], args[1:]
	if method != "analyze" && method != "crowdgroup" {
		return usageError{fmt.Errorf("call: unknown method %q (analyze or crowdgroup)", method)}
	}
	s := newSettings("call "+method, c.getenv)
	var (
		ac        alipaySettings
		ls        logSettings
		req       alipay.AnalyzeRequest
		in        crowdGroupInput
		tokenFile string
	)
	bindAlipay(s, &ac)
	bindLog(s, &ls)
	if method == "analyze" {
		s.str(&req.UserID, "user-id", "", "", "Alipay user id (2088…)")
		s.str(&req.RuleUUID, "rule-uuid", "", "", "promo rule id")
		s.str(&req.BizID, "biz-id", "", "", "optional business id")
		s.str(&tokenFile, "app-auth-token-file", "", "", "file holding the ISV app_auth_token (never printed)")
	} else {
		in.bind(s)
	}
	if done, err := c.parseOrHelp(s, args, "eligo call "+method+" [flags]", callDescription); done || err != nil {
		return err
	}
	var errs []error
	if method == "analyze" {
		if req.UserID == "" {
			errs = append(errs, s.required("user-id", "the Alipay user id"))
		}
		if req.RuleUUID == "" {
			errs = append(errs, s.required("rule-uuid", "the promo rule id"))
		}
	}
	if err := checkConfig(ac.validate(s), ls.validate(s), errs); err != nil {
		return err
	}
	client, err := newAlipayClient(ac, alipay.BreakerSettings{}, nil, newLogger(c.stderr, ls), nil, nil)
	if err != nil {
		return err
	}
	var out any
	switch method {
	case "analyze":
		if tokenFile != "" {
			tok, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("read --app-auth-token-file: %w", err)
			}
			req.AppAuthToken = strings.TrimSpace(string(tok))
		}
		resp, err := client.Analyze(ctx, req)
		if err != nil {
			return describeCallError(err)
		}
		out = struct {
			Method            string `json:"method"`
			ResultCode        string `json:"result_code"`
			Success           bool   `json:"success"`
			Triggered         bool   `json:"triggered"`
			FailConditionName string `json:"fail_condition_name"`
			FailConditionMsg  string `json:"fail_condition_msg"`
			TraceID           string `json:"trace_id,omitempty"`
		}{alipay.MethodRuleAnalyze, resp.ResultCode, resp.Success, resp.Triggered, resp.FailConditionName, resp.FailConditionMsg, resp.TraceID}
	case "crowdgroup":
		cmd, err := in.command(s, stdin)
		if err != nil {
			return err
		}
		resp, err := client.SetCrowdGroup(ctx, crowdGroupRequest(cmd))
		if err != nil {
			return describeCallError(err)
		}
		out = struct {
			Method             string             `json:"method"`
			CrowdGroupID       string             `json:"crowd_group_id"`
			Status             string             `json:"status"`
			ConditionModelList []alipay.Condition `json:"condition_model_list"`
			TraceID            string             `json:"trace_id,omitempty"`
		}{alipay.MethodCrowdGroupCondSet, resp.CrowdGroupID, resp.Status, resp.ConditionModelList, resp.TraceID}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	fmt.Fprintf(c.stdout, "%s\n", b)
	return nil
}

// crowdGroupRequest maps a command to the gateway request.
func crowdGroupRequest(cmd messages.CrowdGroupCommand) alipay.CrowdGroupRequest {
	req := alipay.CrowdGroupRequest{
		Operation:    cmd.Operation,
		ShopID:       cmd.ShopID,
		CrowdGroupID: cmd.CrowdGroupID,
		Describe:     cmd.Describe,
		OperatorID:   cmd.OperatorID,
		OperatorType: cmd.OperatorType,
		AppAuthToken: cmd.AppAuthToken,
	}
	for _, c := range cmd.ConditionModelList {
		req.ConditionModelList = append(req.ConditionModelList, alipay.Condition{
			LogicalOperator: c.LogicalOperator, Period: c.Period, OperationValue: c.OperationValue,
			OperatorRule: c.OperatorRule, RuleUnit: c.RuleUnit,
		})
	}
	return req
}

// describeCallError adds the error class to a gateway error, so the operator knows whether
// to retry, fix configuration or fix the request.
func describeCallError(err error) error {
	return fmt.Errorf("%w [class %s]", err, alipay.ClassOf(err))
}
