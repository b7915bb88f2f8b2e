package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// LedgerQueries is the ledger read side the API needs. Every method reads the books of the
// merchant it is given, and fails on an empty merchant.
type LedgerQueries interface {
	AccountBalances(ctx context.Context, merchant domain.MerchantID, asOf time.Time) (queries.AccountBalances, error)
	Postings(ctx context.Context, merchant domain.MerchantID, account string, q queries.PostingsQuery) (queries.PostingsPage, error)
	TrialBalance(ctx context.Context, merchant domain.MerchantID, asOf time.Time, currency string) (queries.TrialBalance, error)
	Wallet(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string) (queries.Wallet, error)
	WalletMovements(ctx context.Context, merchant domain.MerchantID, seller domain.SellerID, asOf time.Time, currency string, q queries.MovementsQuery) (queries.MovementsPage, error)
}

var _ LedgerQueries = (*queries.Ledger)(nil)

// WithLedger serves the ledger and wallet routes from l, each for the request's merchant
// (Principal.Merchant) only:
//
//	GET /api/v1/ledger/accounts?asOf=                    balances of every account
//	GET /api/v1/ledger/accounts/{account}/postings       postings, oldest first (limit, cursor);
//	                                                     an account without postings: empty list;
//	                                                     a cursor not returned by it (cursor= too): 400
//	GET /api/v1/ledger/trial-balance?asOf=&currency=     trial balance (currency default KRW)
//	GET /api/v1/wallets/{sellerId}?asOf=&currency=       pending and available
//	GET /api/v1/wallets/{sellerId}/movements?asOf=&currency=
//	                                                     the movements behind those figures, newest
//	                                                     first (limit 1–500, default 50; cursor); a
//	                                                     later page without asOf is as of the first's;
//	                                                     a cursor of another seller, currency or asOf: 400
//
// asOf is an RFC 3339 timestamp (absent: now); anything else is 400 INVALID_REQUEST. Times in
// answers are RFC 3339 in KST (+09:00).
func (s *Server) WithLedger(l LedgerQueries) *Server {
	s.ledger = l
	s.api(http.MethodGet, "/api/v1/ledger/accounts", domain.ScopeLedgerRead, s.ledgerAccounts)
	s.api(http.MethodGet, "/api/v1/ledger/accounts/{account}/postings", domain.ScopeLedgerRead, s.ledgerPostings)
	s.api(http.MethodGet, "/api/v1/ledger/trial-balance", domain.ScopeLedgerRead, s.trialBalance)
	s.api(http.MethodGet, "/api/v1/wallets/{sellerId}", domain.ScopeLedgerRead, s.wallet)
	s.api(http.MethodGet, "/api/v1/wallets/{sellerId}/movements", domain.ScopeLedgerRead, s.walletMovements)
	return s
}

// asOf reads the asOf parameter: RFC 3339, absent = now.
func asOf(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("asOf")
	if v == "" {
		return time.Now().In(domain.KST), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("INVALID_REQUEST", "asOf must be an RFC 3339 timestamp such as 2026-11-21T12:00:00+09:00, got %q", truncate(v, 40))
	}
	return t, nil
}

func (s *Server) ledgerAccounts(w http.ResponseWriter, r *http.Request) {
	at, err := asOf(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.ledger.AccountBalances(r.Context(), principalOf(r.Context()).Merchant, at)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) ledgerPostings(w http.ResponseWriter, r *http.Request) {
	cursor, limit, err := pageParams(r.URL.Query())
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q := queries.PostingsQuery{Cursor: cursor, Limit: limit}
	res, err := s.ledger.Postings(r.Context(), principalOf(r.Context()).Merchant, mux.Vars(r)["account"], q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) trialBalance(w http.ResponseWriter, r *http.Request) {
	at, err := asOf(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.ledger.TrialBalance(r.Context(), principalOf(r.Context()).Merchant, at, r.URL.Query().Get("currency"))
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) wallet(w http.ResponseWriter, r *http.Request) {
	at, err := asOf(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.ledger.Wallet(r.Context(), principalOf(r.Context()).Merchant, domain.SellerID(mux.Vars(r)["sellerId"]), at, r.URL.Query().Get("currency"))
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) walletMovements(w http.ResponseWriter, r *http.Request) {
	// Absent, asOf is left zero: now on a first page, the first page's moment on the pages after
	// it (the cursor holds it), so that a listing read page by page is of one moment.
	var at time.Time
	if r.URL.Query().Get("asOf") != "" {
		var err error
		if at, err = asOf(r); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
	}
	cursor, limit, err := pageParams(r.URL.Query())
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q := queries.MovementsQuery{Cursor: cursor, Limit: limit}
	res, err := s.ledger.WalletMovements(r.Context(), principalOf(r.Context()).Merchant, domain.SellerID(mux.Vars(r)["sellerId"]), at, r.URL.Query().Get("currency"), q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
