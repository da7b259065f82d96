package messages_test

import (
	"errors"
	"fmt"

	"github.com/eligo-dev/eligo/messages"
)

func ExampleDecodeAnalyzeCheck() {
	check, err := messages.DecodeAnalyzeCheck([]byte(`{"request_id":"r-1","user_id":"2088302535065344",
		"rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566","max_age_s":300}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(check.RequestID, check.RuleUUID, *check.MaxAgeS)
	fmt.Println(messages.Subjects{}.AnalyzeResult(check.RuleUUID))

	// Every problem is reported, each with its field and code.
	_, err = messages.DecodeAnalyzeCheck([]byte(`{"request_id":"r-2","user_id":2088,"rule_uuid":"a.b"}`))
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("rejected", ve.ID)
		for _, fe := range ve.Errors {
			fmt.Printf("%s %s: %s\n", fe.Field, fe.Code, fe.Message)
		}
	}
	// Output:
	// r-1 7acd2b42617dc6165ca6637df06e6c3e 300
	// eligo.result.analyze.7acd2b42617dc6165ca6637df06e6c3e
	// rejected r-2
	// user_id INVALID_TYPE: user_id must be a JSON string
	// rule_uuid UNSAFE_SUBJECT_TOKEN: rule_uuid becomes a NATS subject token: it must not contain '.', '*', '>', whitespace or control characters
}

func ExampleDecodeCrowdGroupCommand() {
	// The request example of the Alipay doc pairs TRADE_AMT with rule_unit DAY: accepted,
	// with a warning, unless StrictUnits is set.
	data := []byte(`{"command_id":"c-1","operation":"CREATE","shop_id":"2018032400077000000048031040",
		"crowd_group_id":"fufangzhaitest01","condition_model_list":[{"logical_operator":"EQ",
		"period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],
		"describe":"爱这家天","operator_id":"2088222807744402"}`)
	cmd, warnings, err := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{})
	fmt.Println(cmd.Operation, cmd.OperatorType, err)
	for _, w := range warnings {
		fmt.Println("warning:", w.Field, w.Code)
	}
	_, _, err = messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{StrictUnits: true})
	fmt.Println(errors.Is(err, messages.ErrInvalid))
	// Output:
	// CREATE MER <nil>
	// warning: condition_model_list[0].rule_unit UNIT_MISMATCH
	// true
}

func ExampleSubjects() {
	s := messages.Subjects{Prefix: "acme.eligo"}
	fmt.Println(s.AnalyzeCheck())
	fmt.Println(s.CrowdGroupResult("2018032400077000000048031040"))
	fmt.Println(s.Rejected(messages.KindAnalyze))
	// Output:
	// acme.eligo.check.analyze
	// acme.eligo.result.crowdgroup.2018032400077000000048031040
	// acme.eligo.rejected.analyze
}
