package toss

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Class says what a caller may do after a failed call.
type Class int

const (
	// ClassUnknownOutcome: the call may have taken effect. Retry under the same idempotency key
	// and/or read the payment back before deciding anything.
	ClassUnknownOutcome Class = iota
	// ClassFinal: Toss refused for a reason of the buyer or the payment; nothing was done.
	ClassFinal
	// ClassMerchantConfig: our keys, contract or request are wrong. Alert a human, never retry.
	ClassMerchantConfig
	// ClassNotExecuted: Toss refused the request without executing it, for a reason that passes
	// (two requests on one payment too close together). Toss stores that refusal under the
	// idempotency key and replays it, so a later try must use a new key; a new key is safe
	// precisely because nothing was executed.
	ClassNotExecuted
)

func (c Class) String() string {
	switch c {
	case ClassUnknownOutcome:
		return "unknown outcome"
	case ClassFinal:
		return "final"
	case ClassMerchantConfig:
		return "merchant config"
	case ClassNotExecuted:
		return "not executed"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Error is the only error type the client returns.
//
// HTTPStatus is 0 when no HTTP response arrived (transport error, timeout, or a request refused
// before sending). Code and Message come from Toss's error body and are empty when the body was
// not Toss's JSON. Err holds the underlying transport, decode or validation error, if any.
type Error struct {
	Op         string // "confirm", "cancel", "get payment", "get payment by order id", "list transactions", "list settlements"
	HTTPStatus int
	Code       string
	Message    string
	Class      Class
	// TraceID is the X-TossPayments-Trace-Id response header, which Toss support asks for.
	TraceID string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("toss ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.HTTPStatus != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		b.WriteString(" ")
	}
	if e.Code != "" {
		b.WriteString(e.Code)
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	} else if e.Message != "" {
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		if e.Code != "" || e.Message != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	b.WriteString(" (")
	b.WriteString(e.Class.String())
	b.WriteString(")")
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrInvalidArgument is wrapped by errors for calls refused before anything was sent (an empty
// paymentKey, a non-positive amount, an idempotency key over 300 characters...). Such errors have
// ClassMerchantConfig: they are bugs on our side and repeating the call cannot help.
var ErrInvalidArgument = errors.New("invalid argument")

func invalidArgument(op, format string, args ...any) *Error {
	return &Error{
		Op:    op,
		Class: ClassMerchantConfig,
		Err:   fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...)),
	}
}

// ClassOf returns the class of an *Error found in err's chain, and ClassUnknownOutcome for any
// other error: an error we cannot explain may hide a request that went through. Call it only with
// a non-nil error; ClassOf(nil) returns ClassUnknownOutcome, which means nothing.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassUnknownOutcome
}

// IsNotFound reports whether err is Toss saying the payment does not exist (404 NOT_FOUND_PAYMENT
// or 404 NOT_FOUND). A 404 without one of these codes (a proxy, a wrong base URL) is not "not
// found". Read-back callers should remember that a payment may be briefly invisible right after
// a confirm.
func IsNotFound(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.HTTPStatus != 404 {
		return false
	}
	return e.Code == "NOT_FOUND_PAYMENT" || e.Code == "NOT_FOUND"
}

// Classify maps Toss's answer to a Class.
//
// Any 5xx and 429 is an unknown outcome whatever the code says: Toss's 5xx codes all mean "not
// completed, try again" and one 500 code has carried a business refusal, so only a read-back can
// tell. Otherwise the code decides through codeClasses; a code missing from the table, or no code
// at all (a body that was not Toss's JSON), is an unknown outcome.
//
// op is the operation ("confirm", "cancel", ...). No rule depends on it today (each code has one
// meaning across the confirm, lookup and cancel tables); it is in the signature so that an
// operation-specific rule would live here and nowhere else.
func Classify(op string, httpStatus int, code string) Class {
	if httpStatus >= 500 || httpStatus == 429 {
		return ClassUnknownOutcome
	}
	if c, ok := codeClasses[code]; ok {
		return c
	}
	return ClassUnknownOutcome
}

// codeClasses maps every code of the confirm, lookup, cancel and transactions tables in
// toss-api.md §8 to its class (§9.3). Codes not listed here are unknown outcomes.
var codeClasses = map[string]Class{
	// Unknown outcome: Toss says "temporary, try again", or the request may already have run.
	"IDEMPOTENT_REQUEST_PROCESSING":             ClassUnknownOutcome, // 409: the first request under this key is still running
	"PROVIDER_ERROR":                            ClassUnknownOutcome, // 400 but documented as temporary
	"CARD_PROCESSING_ERROR":                     ClassUnknownOutcome, // 400, card company side
	"FAILED_INTERNAL_SYSTEM_PROCESSING":         ClassUnknownOutcome, // 500; also seen carrying an escrow refusal ([ES12])
	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": ClassUnknownOutcome, // 500
	"UNKNOWN_PAYMENT_ERROR":                     ClassUnknownOutcome, // 500
	"COMMON_ERROR":                              ClassUnknownOutcome, // 500
	"FAILED_REFUND_PROCESS":                     ClassUnknownOutcome, // 500, bank delay
	"FAILED_PARTIAL_REFUND":                     ClassUnknownOutcome, // 500, bank maintenance
	"FAILED_METHOD_HANDLING_CANCEL":             ClassUnknownOutcome, // 500
	"ALREADY_PROCESSED_PAYMENT":                 ClassUnknownOutcome, // confirm: approved before, by us or not; read back and compare
	// Not executed: refused before processing; try later under a new key.
	"FORBIDDEN_CONSECUTIVE_REQUEST": ClassNotExecuted, // 403: too soon after the previous request on the payment (cancels: 1 s)

	// Merchant configuration: keys, contract or our own request; alert, never retry.
	"UNAUTHORIZED_KEY":             ClassMerchantConfig,
	"INVALID_API_KEY":              ClassMerchantConfig,
	"INCORRECT_BASIC_AUTH_FORMAT":  ClassMerchantConfig,
	"INVALID_IDEMPOTENCY_KEY":      ClassMerchantConfig,
	"FORBIDDEN_REQUEST":            ClassMerchantConfig,
	"NOT_FOUND_TERMINAL_ID":        ClassMerchantConfig,
	"INVALID_UNREGISTERED_SUBMALL": ClassMerchantConfig,
	"NOT_REGISTERED_BUSINESS":      ClassMerchantConfig,
	"UNAPPROVED_ORDER_ID":          ClassMerchantConfig,

	// Final, request level: the request or the payment it names is wrong or gone.
	"INVALID_REQUEST":           ClassFinal,
	"NOT_FOUND_PAYMENT":         ClassFinal, // see IsNotFound
	"NOT_FOUND":                 ClassFinal,
	"NOT_FOUND_PAYMENT_SESSION": ClassFinal, // confirm later than 10 minutes after authentication
	"INVALID_TRANSACTION_KEY":   ClassFinal, // transactions list: startingAfter refused

	// Final, card refused or card data wrong.
	"INVALID_REJECT_CARD":         ClassFinal,
	"INVALID_CARD_EXPIRATION":     ClassFinal,
	"INVALID_STOPPED_CARD":        ClassFinal,
	"INVALID_CARD_LOST_OR_STOLEN": ClassFinal,
	"INVALID_CARD_NUMBER":         ClassFinal,
	"REJECT_CARD_PAYMENT":         ClassFinal,
	"REJECT_CARD_COMPANY":         ClassFinal,
	"NOT_ALLOWED_POINT_USE":       ClassFinal,
	"FDS_ERROR":                   ClassFinal,

	// Final, instalment plan not possible.
	"EXCEED_MAX_CARD_INSTALLMENT_PLAN":                    ClassFinal,
	"NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT":     ClassFinal,
	"INVALID_CARD_INSTALLMENT_PLAN":                       ClassFinal,
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN":              ClassFinal,
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT": ClassFinal,

	// Final, amount and count limits.
	"BELOW_MINIMUM_AMOUNT":                ClassFinal,
	"EXCEED_MAX_DAILY_PAYMENT_COUNT":      ClassFinal,
	"EXCEED_MAX_PAYMENT_AMOUNT":           ClassFinal,
	"EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT":  ClassFinal,
	"EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT": ClassFinal,
	"EXCEED_MAX_AMOUNT":                   ClassFinal,
	"EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT":   ClassFinal,
	"EXCEED_MAX_ONE_DAY_AMOUNT":           ClassFinal,
	"EXCEED_MAX_AUTH_COUNT":               ClassFinal,

	// Final, buyer's account, authentication or timing.
	"INVALID_AUTHORIZE_AUTH":           ClassFinal,
	"INVALID_PASSWORD":                 ClassFinal,
	"RESTRICTED_TRANSFER_ACCOUNT":      ClassFinal,
	"INVALID_ACCOUNT_INFO_RE_REGISTER": ClassFinal,
	"REJECT_ACCOUNT_PAYMENT":           ClassFinal,
	"REJECT_TOSSPAY_INVALID_ACCOUNT":   ClassFinal,
	"NOT_AVAILABLE_PAYMENT":            ClassFinal, // not at this time of day
	"NOT_AVAILABLE_BANK":               ClassFinal, // outside bank hours

	// Final, cancel refused.
	"ALREADY_CANCELED_PAYMENT":                   ClassFinal,
	"ALREADY_REFUND_PAYMENT":                     ClassFinal,
	"NOT_CANCELABLE_AMOUNT":                      ClassFinal,
	"NOT_CANCELABLE_PAYMENT":                     ClassFinal,
	"NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER":    ClassFinal,
	"NOT_MATCHES_REFUNDABLE_AMOUNT":              ClassFinal,
	"EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT":       ClassFinal,
	"EXCEED_CANCEL_LIMIT":                        ClassFinal,
	"EXCEED_MAX_REFUND_DUE":                      ClassFinal,
	"NOT_ALLOWED_PARTIAL_REFUND":                 ClassFinal,
	"NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT": ClassFinal,
	"REFUND_REJECTED":                            ClassFinal,

	// Final, refund account (virtual-account cancels).
	"INVALID_REFUND_ACCOUNT_INFO":   ClassFinal,
	"INVALID_REFUND_ACCOUNT_NUMBER": ClassFinal,
	"INVALID_BANK":                  ClassFinal,
	"FORBIDDEN_BANK_REFUND_REQUEST": ClassFinal,
}

// Answers whose meaning depends on what the caller did: a code alone does not say whether the
// operation happened, so each sends the caller to a read-back instead of a reaction to the code.

// AlreadyProcessed reports whether a confirm was answered ALREADY_PROCESSED_PAYMENT: Toss has
// processed this paymentKey before, under our earlier key or another (the buyer's other tab).
// Only a read-back showing DONE with our orderId, paymentKey and amount makes it our approval;
// asking again under the same key replays the same answer.
func AlreadyProcessed(err error) bool { return hasCode(err, "ALREADY_PROCESSED_PAYMENT") }

// AlreadyCanceled reports whether a cancel was answered ALREADY_CANCELED_PAYMENT: possibly our
// own earlier cancel whose answer was lost, possibly a cancel made elsewhere. Its outcome is
// unknown until the payment is read back.
func AlreadyCanceled(err error) bool { return hasCode(err, "ALREADY_CANCELED_PAYMENT") }

// SessionExpired reports whether a confirm was answered NOT_FOUND_PAYMENT_SESSION: the buyer
// authenticated more than Toss's confirm window ago (toss-api.md §3), so the payment can no
// longer be confirmed: it expired.
func SessionExpired(err error) bool { return hasCode(err, "NOT_FOUND_PAYMENT_SESSION") }

func hasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
