package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/queries"
)

// LedgerQueries is the ledger read side the API needs.
type LedgerQueries interface {
	AccountBalances(ctx context.Context, asOf time.Time) (queries.AccountBalances, error)
	Postings(ctx context.Context, account string, q queries.PostingsQuery) (queries.PostingsPage, error)
	TrialBalance(ctx context.Context, asOf time.Time, currency string) (queries.TrialBalance, error)
	Wallet(ctx context.Context, sellerID string, asOf time.Time, currency string) (queries.Wallet, error)
	WalletHistory(ctx context.Context, sellerID string, asOf time.Time, currency string) ([]queries.WalletMovement, error)
}

var _ LedgerQueries = (*queries.Ledger)(nil)

// WithLedger serves the ledger and wallet routes from l:
//
//	GET /api/v1/ledger/accounts?asOf=                    balances of every account
//	GET /api/v1/ledger/accounts/{account}/postings       postings, oldest first (limit, cursor);
//	                                                     an account without postings: empty list
//	GET /api/v1/ledger/trial-balance?asOf=&currency=     trial balance (currency default KRW)
//	GET /api/v1/wallets/{sellerId}?asOf=&currency=       pending and available
//	GET /api/v1/wallets/{sellerId}/movements?asOf=       the movements behind those figures
//
// asOf is an RFC 3339 timestamp (absent: now); anything else is 400 INVALID_REQUEST.
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
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("INVALID_REQUEST", "asOf must be an RFC 3339 timestamp such as 2026-11-21T03:00:00Z, got %q", truncate(v, 40))
	}
	return t, nil
}

func (s *Server) ledgerAccounts(w http.ResponseWriter, r *http.Request) {
	at, err := asOf(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.ledger.AccountBalances(r.Context(), at)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) ledgerPostings(w http.ResponseWriter, r *http.Request) {
	q := queries.PostingsQuery{Cursor: r.URL.Query().Get("cursor")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			writeError(w, r, s.logger, badRequest("INVALID_REQUEST", "limit must be a positive integer, got %q", truncate(l, 20)))
			return
		}
		q.Limit = n
	}
	res, err := s.ledger.Postings(r.Context(), mux.Vars(r)["account"], q)
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
	res, err := s.ledger.TrialBalance(r.Context(), at, r.URL.Query().Get("currency"))
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
	res, err := s.ledger.Wallet(r.Context(), mux.Vars(r)["sellerId"], at, r.URL.Query().Get("currency"))
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) walletMovements(w http.ResponseWriter, r *http.Request) {
	at, err := asOf(r)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	res, err := s.ledger.WalletHistory(r.Context(), mux.Vars(r)["sellerId"], at, r.URL.Query().Get("currency"))
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sellerId": mux.Vars(r)["sellerId"], "asOf": at.UTC(), "movements": res})
}
