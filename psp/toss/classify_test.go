package toss

import (
	"errors"
	"fmt"
	"testing"
)

const (
	unknown = ClassUnknownOutcome
	final   = ClassFinal
	config  = ClassMerchantConfig
	later   = ClassNotExecuted
)

// classCases lists every row of toss-api.md §8.1 (confirm), §8.2 (lookup), §8.3 (cancel) and
// §8.4 (transactions), with the HTTP status of the row.
var classCases = []struct {
	section string
	op      string
	status  int
	code    string
	want    Class
}{
	// §8.1 confirm
	{"8.1", "confirm", 400, "ALREADY_PROCESSED_PAYMENT", unknown},
	{"8.1", "confirm", 400, "PROVIDER_ERROR", unknown},
	{"8.1", "confirm", 400, "EXCEED_MAX_CARD_INSTALLMENT_PLAN", final},
	{"8.1", "confirm", 400, "INVALID_REQUEST", final},
	{"8.1", "confirm", 400, "NOT_ALLOWED_POINT_USE", final},
	{"8.1", "confirm", 400, "INVALID_API_KEY", config},
	{"8.1", "confirm", 400, "INVALID_REJECT_CARD", final},
	{"8.1", "confirm", 400, "BELOW_MINIMUM_AMOUNT", final},
	{"8.1", "confirm", 400, "INVALID_CARD_EXPIRATION", final},
	{"8.1", "confirm", 400, "INVALID_STOPPED_CARD", final},
	{"8.1", "confirm", 400, "EXCEED_MAX_DAILY_PAYMENT_COUNT", final},
	{"8.1", "confirm", 400, "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT", final},
	{"8.1", "confirm", 400, "INVALID_CARD_INSTALLMENT_PLAN", final},
	{"8.1", "confirm", 400, "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN", final},
	{"8.1", "confirm", 400, "EXCEED_MAX_PAYMENT_AMOUNT", final},
	{"8.1", "confirm", 400, "NOT_FOUND_TERMINAL_ID", config},
	{"8.1", "confirm", 400, "INVALID_AUTHORIZE_AUTH", final},
	{"8.1", "confirm", 400, "INVALID_CARD_LOST_OR_STOLEN", final},
	{"8.1", "confirm", 400, "RESTRICTED_TRANSFER_ACCOUNT", final},
	{"8.1", "confirm", 400, "INVALID_CARD_NUMBER", final},
	{"8.1", "confirm", 400, "INVALID_UNREGISTERED_SUBMALL", config},
	{"8.1", "confirm", 400, "NOT_REGISTERED_BUSINESS", config},
	{"8.1", "confirm", 400, "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT", final},
	{"8.1", "confirm", 400, "EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT", final},
	{"8.1", "confirm", 400, "CARD_PROCESSING_ERROR", unknown},
	{"8.1", "confirm", 400, "EXCEED_MAX_AMOUNT", final},
	{"8.1", "confirm", 400, "INVALID_ACCOUNT_INFO_RE_REGISTER", final},
	{"8.1", "confirm", 400, "NOT_AVAILABLE_PAYMENT", final},
	{"8.1", "confirm", 400, "UNAPPROVED_ORDER_ID", config},
	{"8.1", "confirm", 400, "EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT", final},
	{"8.1", "confirm", 401, "UNAUTHORIZED_KEY", config},
	{"8.1", "confirm", 403, "REJECT_CARD_PAYMENT", final},
	{"8.1", "confirm", 403, "REJECT_CARD_COMPANY", final},
	{"8.1", "confirm", 403, "FORBIDDEN_REQUEST", config},
	{"8.1", "confirm", 403, "REJECT_ACCOUNT_PAYMENT", final},
	{"8.1", "confirm", 403, "REJECT_TOSSPAY_INVALID_ACCOUNT", final},
	{"8.1", "confirm", 403, "EXCEED_MAX_AUTH_COUNT", final},
	{"8.1", "confirm", 403, "EXCEED_MAX_ONE_DAY_AMOUNT", final},
	{"8.1", "confirm", 403, "NOT_AVAILABLE_BANK", final},
	{"8.1", "confirm", 403, "INVALID_PASSWORD", final},
	{"8.1", "confirm", 403, "INCORRECT_BASIC_AUTH_FORMAT", config},
	{"8.1", "confirm", 403, "FDS_ERROR", final},
	{"8.1", "confirm", 404, "NOT_FOUND_PAYMENT", final},
	{"8.1", "confirm", 404, "NOT_FOUND_PAYMENT_SESSION", final},
	{"8.1", "confirm", 409, "IDEMPOTENT_REQUEST_PROCESSING", unknown},
	{"8.1", "confirm", 400, "INVALID_IDEMPOTENCY_KEY", config},
	{"8.1", "confirm", 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", unknown},
	{"8.1", "confirm", 500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", unknown},
	{"8.1", "confirm", 500, "UNKNOWN_PAYMENT_ERROR", unknown},

	// §8.2 lookup
	{"8.2", "get payment", 400, "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT", final},
	{"8.2", "get payment", 403, "FORBIDDEN_CONSECUTIVE_REQUEST", later},
	{"8.2", "get payment", 403, "INCORRECT_BASIC_AUTH_FORMAT", config},
	{"8.2", "get payment", 404, "NOT_FOUND_PAYMENT", final},
	{"8.2", "get payment by order id", 404, "NOT_FOUND", final},
	{"8.2", "get payment", 500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", unknown},

	// §8.3 cancel
	{"8.3", "cancel", 400, "ALREADY_CANCELED_PAYMENT", final},
	{"8.3", "cancel", 400, "INVALID_REFUND_ACCOUNT_INFO", final},
	{"8.3", "cancel", 400, "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", final},
	{"8.3", "cancel", 400, "INVALID_REQUEST", final},
	{"8.3", "cancel", 400, "INVALID_REFUND_ACCOUNT_NUMBER", final},
	{"8.3", "cancel", 400, "INVALID_BANK", final},
	{"8.3", "cancel", 400, "NOT_MATCHES_REFUNDABLE_AMOUNT", final},
	{"8.3", "cancel", 400, "PROVIDER_ERROR", unknown},
	{"8.3", "cancel", 400, "REFUND_REJECTED", final},
	{"8.3", "cancel", 400, "ALREADY_REFUND_PAYMENT", final},
	{"8.3", "cancel", 400, "FORBIDDEN_BANK_REFUND_REQUEST", final},
	{"8.3", "cancel", 401, "UNAUTHORIZED_KEY", config},
	{"8.3", "cancel", 403, "NOT_CANCELABLE_AMOUNT", final},
	{"8.3", "cancel", 403, "NOT_CANCELABLE_PAYMENT", final},
	{"8.3", "cancel", 403, "FORBIDDEN_CONSECUTIVE_REQUEST", later},
	{"8.3", "cancel", 403, "FORBIDDEN_REQUEST", config},
	{"8.3", "cancel", 403, "EXCEED_MAX_REFUND_DUE", final},
	{"8.3", "cancel", 403, "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT", final},
	{"8.3", "cancel", 403, "NOT_ALLOWED_PARTIAL_REFUND", final},
	{"8.3", "cancel", 403, "NOT_AVAILABLE_BANK", final},
	{"8.3", "cancel", 403, "INCORRECT_BASIC_AUTH_FORMAT", config},
	{"8.3", "cancel", 403, "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER", final},
	{"8.3", "cancel", 403, "EXCEED_CANCEL_LIMIT", final},
	{"8.3", "cancel", 404, "NOT_FOUND_PAYMENT", final},
	{"8.3", "cancel", 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", unknown},
	{"8.3", "cancel", 500, "FAILED_REFUND_PROCESS", unknown},
	{"8.3", "cancel", 500, "FAILED_PARTIAL_REFUND", unknown},
	{"8.3", "cancel", 500, "FAILED_METHOD_HANDLING_CANCEL", unknown},
	{"8.3", "cancel", 500, "COMMON_ERROR", unknown},
	{"8.3", "cancel", 500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", unknown},

	// §8.4 transactions
	{"8.4", "list transactions", 400, "INVALID_TRANSACTION_KEY", final},
}

func TestClassifyDocumentedCodes(t *testing.T) {
	for _, tc := range classCases {
		if got := Classify(tc.op, tc.status, tc.code); got != tc.want {
			t.Errorf("§%s %s %d %s: got %v, want %v", tc.section, tc.op, tc.status, tc.code, got, tc.want)
		}
	}
}

// TestClassTableMatchesDocs keeps the code table and the documented list in step: the table
// holds no code the docs do not list, and every documented code is in the table (so no listed
// code falls to the "unmapped" default by accident).
func TestClassTableMatchesDocs(t *testing.T) {
	documented := map[string]bool{}
	for _, tc := range classCases {
		documented[tc.code] = true
		if _, ok := codeClasses[tc.code]; !ok {
			t.Errorf("documented code %s is not in codeClasses", tc.code)
		}
	}
	for code := range codeClasses {
		if !documented[code] {
			t.Errorf("codeClasses has %s, which no documented row tests", code)
		}
	}
}

func TestClassifyOutsideTheTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
		want   Class
	}{
		{"unmapped code on a 400", 400, "SOMETHING_NEW_FROM_TOSS", unknown},
		{"unmapped code on a 403", 403, "ALREADY_COMPLETED_PAYMENT", unknown},
		{"no code on a 400 (body not JSON)", 400, "", unknown},
		{"no code on a 401", 401, "", unknown},
		{"no code on a 404 (proxy page)", 404, "", unknown},
		{"no code on a 502", 502, "", unknown},
		{"429 without code", 429, "", unknown},
		{"429 with a final code", 429, "INVALID_REQUEST", unknown},
		{"5xx wins over a final code", 500, "NOT_CANCELABLE_PAYMENT", unknown},
		{"5xx wins over a config code", 503, "UNAUTHORIZED_KEY", unknown},
		{"409 in flight", 409, "IDEMPOTENT_REQUEST_PROCESSING", unknown},
		{"transport error", 0, "", unknown},
	} {
		if got := Classify("confirm", tc.status, tc.code); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestClassOf(t *testing.T) {
	e := &Error{Op: "cancel", HTTPStatus: 403, Code: "NOT_CANCELABLE_PAYMENT", Class: ClassFinal}
	if got := ClassOf(fmt.Errorf("cancel order 7: %w", e)); got != ClassFinal {
		t.Errorf("wrapped *Error: got %v, want final", got)
	}
	if got := ClassOf(errors.New("something else")); got != ClassUnknownOutcome {
		t.Errorf("foreign error: got %v, want unknown outcome", got)
	}
}

func TestIsNotFound(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{HTTPStatus: 404, Code: "NOT_FOUND_PAYMENT"}, true},
		{fmt.Errorf("read back: %w", &Error{HTTPStatus: 404, Code: "NOT_FOUND"}), true},
		{&Error{HTTPStatus: 404, Code: "NOT_FOUND_PAYMENT_SESSION"}, false},
		{&Error{HTTPStatus: 404}, false}, // a proxy's 404 page
		{&Error{HTTPStatus: 400, Code: "NOT_FOUND_PAYMENT"}, false},
		{errors.New("NOT_FOUND_PAYMENT"), false},
		{nil, false},
	} {
		if got := IsNotFound(tc.err); got != tc.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "confirm", HTTPStatus: 400, Code: "PROVIDER_ERROR", Message: "일시적인 오류", Class: ClassUnknownOutcome},
			"toss confirm: HTTP 400 PROVIDER_ERROR: 일시적인 오류 (unknown outcome)"},
		{&Error{Op: "get payment", HTTPStatus: 502, Class: ClassUnknownOutcome, Err: errors.New("error body is not Toss JSON")},
			"toss get payment: HTTP 502 error body is not Toss JSON (unknown outcome)"},
		{&Error{Op: "cancel", Class: ClassMerchantConfig, Err: fmt.Errorf("%w: empty cancelReason", ErrInvalidArgument)},
			"toss cancel: invalid argument: empty cancelReason (merchant config)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestAnswersThatNeedARead(t *testing.T) {
	answer := func(code string) error {
		return &Error{Op: "x", HTTPStatus: 400, Code: code, Class: Classify("x", 400, code)}
	}
	for _, c := range []struct {
		code                                string
		processed, canceled, sessionExpired bool
	}{
		{"ALREADY_PROCESSED_PAYMENT", true, false, false},
		{"ALREADY_CANCELED_PAYMENT", false, true, false},
		{"NOT_FOUND_PAYMENT_SESSION", false, false, true},
		{"REJECT_CARD_PAYMENT", false, false, false},
	} {
		err := fmt.Errorf("wrapped: %w", answer(c.code))
		if AlreadyProcessed(err) != c.processed || AlreadyCanceled(err) != c.canceled || SessionExpired(err) != c.sessionExpired {
			t.Errorf("%s: processed %v canceled %v sessionExpired %v", c.code, AlreadyProcessed(err), AlreadyCanceled(err), SessionExpired(err))
		}
	}
	if AlreadyProcessed(errors.New("ALREADY_PROCESSED_PAYMENT")) {
		t.Error("a plain error is no Toss answer")
	}
}
