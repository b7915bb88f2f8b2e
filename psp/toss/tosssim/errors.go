package tosssim

import (
	"fmt"
	"net/http"
)

// Error is a Toss-style error answer: the HTTP status and the {code, message} body.
// CreateSession returns it, so in-process callers can inspect the code with errors.As.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("tosssim: %d %s: %s", e.Status, e.Code, e.Message)
}

// errorSpec is one row of the toss-api.md §8 tables.
type errorSpec struct {
	status  int
	message string
}

// errorTable maps every error code the simulator can answer to its HTTP status and Korean
// message. Statuses are the toss-api.md §8 tables. Messages are the official error-code page
// as scraped in M-errx, or the longer text of the S-woowa/J enums where M-errx shortens it, or
// the recorded bodies in toss-samples/. One code has one status in every table, so a single
// table serves confirm, lookup and cancel. Clients must match on code, never on message.
var errorTable = map[string]errorSpec{
	// §8.1 confirm
	"ALREADY_PROCESSED_PAYMENT":                       {http.StatusBadRequest, "이미 처리된 결제 입니다."},
	"PROVIDER_ERROR":                                  {http.StatusBadRequest, "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요."},
	"EXCEED_MAX_CARD_INSTALLMENT_PLAN":                {http.StatusBadRequest, "설정 가능한 최대 할부 개월 수를 초과했습니다."},
	"INVALID_REQUEST":                                 {http.StatusBadRequest, "잘못된 요청입니다."},
	"NOT_ALLOWED_POINT_USE":                           {http.StatusBadRequest, "포인트 사용이 불가한 카드로 카드 포인트 결제에 실패했습니다."},
	"INVALID_API_KEY":                                 {http.StatusBadRequest, "잘못된 시크릿키 연동 정보 입니다."},
	"INVALID_REJECT_CARD":                             {http.StatusBadRequest, "카드 사용이 거절되었습니다. 카드사 문의가 필요합니다."},
	"BELOW_MINIMUM_AMOUNT":                            {http.StatusBadRequest, "신용카드는 결제금액이 100원 이상, 계좌는 200원이상부터 결제가 가능합니다."},
	"INVALID_CARD_EXPIRATION":                         {http.StatusBadRequest, "카드 정보를 다시 확인해주세요. (유효기간)"},
	"INVALID_STOPPED_CARD":                            {http.StatusBadRequest, "정지된 카드 입니다."},
	"EXCEED_MAX_DAILY_PAYMENT_COUNT":                  {http.StatusBadRequest, "하루 결제 가능 횟수를 초과했습니다."},
	"NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT": {http.StatusBadRequest, "할부가 지원되지 않는 카드 또는 가맹점 입니다."},
	"INVALID_CARD_INSTALLMENT_PLAN":                   {http.StatusBadRequest, "할부 개월 정보가 잘못되었습니다."},
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN":          {http.StatusBadRequest, "할부가 지원되지 않는 카드입니다."},
	"EXCEED_MAX_PAYMENT_AMOUNT":                       {http.StatusBadRequest, "하루 결제 가능 금액을 초과했습니다."},
	"NOT_FOUND_TERMINAL_ID":                           {http.StatusBadRequest, "단말기번호(Terminal Id)가 없습니다. 토스페이먼츠로 문의 바랍니다."},
	"INVALID_AUTHORIZE_AUTH":                          {http.StatusBadRequest, "유효하지 않은 인증 방식입니다."},
	"INVALID_CARD_LOST_OR_STOLEN":                     {http.StatusBadRequest, "분실 혹은 도난 카드입니다."},
	"RESTRICTED_TRANSFER_ACCOUNT":                     {http.StatusBadRequest, "계좌는 등록 후 12시간 뒤부터 결제할 수 있습니다. 관련 정책은 해당 은행으로 문의해주세요."},
	"INVALID_CARD_NUMBER":                             {http.StatusBadRequest, "카드번호를 다시 확인해주세요."},
	"INVALID_UNREGISTERED_SUBMALL":                    {http.StatusBadRequest, "등록되지 않은 서브몰입니다. 서브몰이 없는 가맹점이라면 안심클릭이나 ISP 결제가 필요합니다."},
	"NOT_REGISTERED_BUSINESS":                         {http.StatusBadRequest, "등록되지 않은 사업자 번호입니다."},
	"EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT":              {http.StatusBadRequest, "1일 출금 한도를 초과했습니다."},
	"EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT":             {http.StatusBadRequest, "1회 출금 한도를 초과했습니다."},
	"CARD_PROCESSING_ERROR":                           {http.StatusBadRequest, "카드사에서 오류가 발생했습니다."},
	"EXCEED_MAX_AMOUNT":                               {http.StatusBadRequest, "거래금액 한도를 초과했습니다."},
	"INVALID_ACCOUNT_INFO_RE_REGISTER":                {http.StatusBadRequest, "유효하지 않은 계좌입니다. 계좌 재등록 후 시도해주세요."},
	"NOT_AVAILABLE_PAYMENT":                           {http.StatusBadRequest, "결제가 불가능한 시간대입니다."},
	"UNAPPROVED_ORDER_ID":                             {http.StatusBadRequest, "아직 승인되지 않은 주문번호입니다."},
	"EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT":               {http.StatusBadRequest, "당월 결제 가능금액인 1,000,000원을 초과 하셨습니다."},
	"UNAUTHORIZED_KEY":                                {http.StatusUnauthorized, "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."},
	"REJECT_CARD_PAYMENT":                             {http.StatusForbidden, "한도초과 혹은 잔액부족으로 결제에 실패했습니다."},
	"REJECT_CARD_COMPANY":                             {http.StatusForbidden, "결제 승인이 거절되었습니다."},
	"FORBIDDEN_REQUEST":                               {http.StatusForbidden, "허용되지 않은 요청입니다."},
	"REJECT_ACCOUNT_PAYMENT":                          {http.StatusForbidden, "잔액부족으로 결제에 실패했습니다."},
	"REJECT_TOSSPAY_INVALID_ACCOUNT":                  {http.StatusForbidden, "선택하신 출금 계좌가 출금이체 등록이 되어 있지 않아요. 계좌를 다시 등록해 주세요."},
	"EXCEED_MAX_AUTH_COUNT":                           {http.StatusForbidden, "최대 인증 횟수를 초과했습니다. 카드사로 문의해주세요."},
	"EXCEED_MAX_ONE_DAY_AMOUNT":                       {http.StatusForbidden, "일일 한도를 초과했습니다."},
	"NOT_AVAILABLE_BANK":                              {http.StatusForbidden, "은행 서비스 시간이 아닙니다."},
	"INVALID_PASSWORD":                                {http.StatusForbidden, "결제 비밀번호가 일치하지 않습니다."},
	"INCORRECT_BASIC_AUTH_FORMAT":                     {http.StatusForbidden, "잘못된 요청입니다. ':' 를 포함해 인코딩해주세요."},
	"FDS_ERROR":                                       {http.StatusForbidden, "[토스페이먼츠] 위험거래가 감지되어 결제가 제한됩니다. 발송된 문자에 포함된 링크를 통해 본인인증 후 결제가 가능합니다. (고객센터: 1644-8051)"},
	"NOT_FOUND_PAYMENT":                               {http.StatusNotFound, "존재하지 않는 결제 정보 입니다."},
	"NOT_FOUND_PAYMENT_SESSION":                       {http.StatusNotFound, "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다."},
	"FAILED_INTERNAL_SYSTEM_PROCESSING":               {http.StatusInternalServerError, "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요."},
	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING":       {http.StatusInternalServerError, "결제가 완료되지 않았어요. 다시 시도해주세요."},
	"UNKNOWN_PAYMENT_ERROR":                           {http.StatusInternalServerError, "결제에 실패했어요. 같은 문제가 반복된다면 은행이나 카드사로 문의해주세요."},

	// §2 idempotency (M-headers)
	"IDEMPOTENT_REQUEST_PROCESSING": {http.StatusConflict, "이전 멱등 요청이 처리중입니다."},
	"INVALID_IDEMPOTENCY_KEY":       {http.StatusBadRequest, "멱등키는 300자 이하여야 합니다."},

	// §8.2 lookup
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT": {http.StatusBadRequest, "5만원 이하의 결제는 할부가 불가능해서 결제에 실패했습니다."},
	"FORBIDDEN_CONSECUTIVE_REQUEST":                       {http.StatusForbidden, "반복적인 요청은 허용되지 않습니다. 잠시 후 다시 시도해주세요."},
	"NOT_FOUND":                                           {http.StatusNotFound, "존재하지 않는 정보 입니다."},

	// §8.3 cancel
	"ALREADY_CANCELED_PAYMENT":                   {http.StatusBadRequest, "이미 취소된 결제 입니다."},
	"INVALID_REFUND_ACCOUNT_INFO":                {http.StatusBadRequest, "환불 계좌번호와 예금주명이 일치하지 않습니다."},
	"EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT":       {http.StatusBadRequest, "즉시할인금액보다 적은 금액은 부분취소가 불가능합니다."},
	"INVALID_REFUND_ACCOUNT_NUMBER":              {http.StatusBadRequest, "잘못된 환불 계좌번호입니다."},
	"INVALID_BANK":                               {http.StatusBadRequest, "유효하지 않은 은행입니다."},
	"NOT_MATCHES_REFUNDABLE_AMOUNT":              {http.StatusBadRequest, "잔액 결과가 일치하지 않습니다."},
	"REFUND_REJECTED":                            {http.StatusBadRequest, "환불이 거절됐습니다. 결제사에 문의 부탁드립니다."},
	"ALREADY_REFUND_PAYMENT":                     {http.StatusBadRequest, "이미 환불된 결제입니다."},
	"FORBIDDEN_BANK_REFUND_REQUEST":              {http.StatusBadRequest, "고객 계좌가 입금이 되지 않는 상태입니다."},
	"NOT_CANCELABLE_AMOUNT":                      {http.StatusForbidden, "취소 할 수 없는 금액 입니다."},
	"NOT_CANCELABLE_PAYMENT":                     {http.StatusForbidden, "취소 할 수 없는 결제 입니다."},
	"EXCEED_MAX_REFUND_DUE":                      {http.StatusForbidden, "환불 가능한 기간이 지났습니다."},
	"NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT": {http.StatusForbidden, "입금 대기중인 결제는 부분 환불이 불가합니다."},
	"NOT_ALLOWED_PARTIAL_REFUND":                 {http.StatusForbidden, "에스크로 주문, 현금 카드 결제일 때는 부분 환불이 불가합니다. 이외 다른 결제 수단에서 부분 취소가 되지 않을 때는 토스페이먼츠에 문의해 주세요."},
	"NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER":    {http.StatusForbidden, "휴면 처리된 회원의 결제는 취소할 수 없습니다."},
	"EXCEED_CANCEL_LIMIT":                        {http.StatusForbidden, "취소 한도 금액을 초과 하였습니다."},
	"FAILED_REFUND_PROCESS":                      {http.StatusInternalServerError, "은행 응답시간 지연이나 일시적인 오류로 환불요청에 실패했습니다."},
	"FAILED_PARTIAL_REFUND":                      {http.StatusInternalServerError, "은행 점검, 해약 계좌 등의 사유로 부분 환불이 실패했습니다."},
	"FAILED_METHOD_HANDLING_CANCEL":              {http.StatusInternalServerError, "취소 중 결제 시 사용한 결제 수단 처리과정에서 일시적인 오류가 발생했습니다."},
	"COMMON_ERROR":                               {http.StatusInternalServerError, "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요."},

	// §8.4 transactions
	"INVALID_TRANSACTION_KEY": {http.StatusBadRequest, "잘못된 페이징 키 입니다."},

	// §1, §9.1: 429 means "retry later", but no Toss code or message for it was found
	// (toss-api.md §13). The simulator's own choice, used by Faults.ErrorRate; any 429 is an
	// unknown outcome whatever its code.
	"TOO_MANY_REQUESTS": {http.StatusTooManyRequests, "요청이 너무 많습니다. 잠시 후 다시 시도해주세요."},

	// Not a core-API code: the browser SDK's error for an orderId that was already approved
	// or canceled. The simulator's session route stands in for the SDK, so it answers this
	// (with 409) when a session is opened for a finished order.
	"DUPLICATED_ORDER_ID": {http.StatusConflict, "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요."},
}

// expiredFailure is the failure a payment carries once its confirm window has passed
// (payment-expired.json, T-1410526054635933798).
var expiredFailure = failure{Code: "EXPIRED_PAYMENT", Message: "결제가 만료되었습니다. 다시 시도해주세요."}

// unknownOutcomeCodes are the confirm errors after which the sources disagree or say the
// outcome is unknown (toss-api.md §9.2/§9.3). A confirmError with one of these codes leaves
// the payment IN_PROGRESS by default instead of ABORTING it.
var unknownOutcomeCodes = map[string]bool{
	"PROVIDER_ERROR":                            true,
	"CARD_PROCESSING_ERROR":                     true,
	"FAILED_INTERNAL_SYSTEM_PROCESSING":         true,
	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": true,
	"UNKNOWN_PAYMENT_ERROR":                     true,
	"IDEMPOTENT_REQUEST_PROCESSING":             true,
	"TOO_MANY_REQUESTS":                         true,
}

// apiError returns the Error for a code of errorTable. An unknown code is a programming error
// in the simulator, so it becomes a 500 rather than a panic in a test server.
func apiError(code string) *Error {
	spec, ok := errorTable[code]
	if !ok {
		return &Error{Status: http.StatusInternalServerError, Code: "COMMON_ERROR", Message: errorTable["COMMON_ERROR"].message}
	}
	return &Error{Status: spec.status, Code: code, Message: spec.message}
}
