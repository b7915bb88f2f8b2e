package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/paymentledger/ledger/domain"
	"github.com/paymentledger/ledger/merchants"
)

// Admin is the merchant administration the admin API needs. *merchants.Service implements it.
type Admin interface {
	Create(ctx context.Context, in merchants.CreateInput) (merchants.IssuedKey, error)
	List(ctx context.Context) ([]merchants.Summary, error)
	Show(ctx context.Context, id domain.MerchantID) (merchants.Detail, error)
	SetTossKey(ctx context.Context, id domain.MerchantID, secretKey, actor string) (merchants.Detail, error)
	SetCommission(ctx context.Context, id domain.MerchantID, rate decimal.Decimal, actor string) (merchants.Detail, error)
	SetTossFeeRate(ctx context.Context, id domain.MerchantID, rate decimal.Decimal, from time.Time, actor string) (merchants.Detail, error)
	IssueKey(ctx context.Context, id domain.MerchantID, scopes []domain.Scope, actor string) (merchants.IssuedKey, error)
	RevokeKey(ctx context.Context, id domain.MerchantID, kid domain.APIKeyID, actor string) (merchants.KeyInfo, error)
	RotateKey(ctx context.Context, id domain.MerchantID, kid domain.APIKeyID, grace time.Duration, actor string) (merchants.IssuedKey, error)
	SetNotificationURL(ctx context.Context, id domain.MerchantID, url, actor string) (merchants.NotificationSetting, error)
	RotateNotificationSecret(ctx context.Context, id domain.MerchantID, grace time.Duration, actor string) (merchants.NotificationSetting, error)
	RemoveNotificationURL(ctx context.Context, id domain.MerchantID, actor string) (merchants.NotificationSetting, error)
}

var _ Admin = (*merchants.Service)(nil)

// WithAdmin serves the admin API from a, guarded by AuthConfig.AdminToken (routes answer 401
// when no token is configured):
//
//	POST /admin/v1/merchants {"name","tossSecretKey"?,"merchantId"?}   201 {"merchantId","apiKey",…}: the first key, every scope
//	GET  /admin/v1/merchants                                            {"merchants":[…]}
//	GET  /admin/v1/merchants/{merchantId}                               the merchant and its keys (never a secret)
//	PUT  /admin/v1/merchants/{merchantId}/toss-key {"tossSecretKey"}    the merchant
//	PUT  /admin/v1/merchants/{merchantId}/commission {"rate":"0.1"}     the merchant
//	PUT  /admin/v1/merchants/{merchantId}/fee-rate {"rate":"0.0341","from"?:"2026-11-01"}  the merchant: its Toss contract fee rate (VAT excluded) from that KST day (default now)
//	POST /admin/v1/merchants/{merchantId}/keys {"scopes"?:[…]}          201 the new key, shown once
//	GET  /admin/v1/merchants/{merchantId}/keys                          {"keys":[…]}
//	POST /admin/v1/merchants/{merchantId}/keys/{keyId}/revoke           the key, revoked now
//	POST /admin/v1/merchants/{merchantId}/keys/{keyId}/rotate {"gracePeriod"?:"24h"}  201 the new key; the old one works for the grace period
//	PUT  /admin/v1/merchants/{merchantId}/notifications {"url"}         {"merchantId","url","secretHint","signingSecret"?}: the secret only when new, shown once
//	POST /admin/v1/merchants/{merchantId}/notifications/rotate-secret {"gracePeriod"?:"24h"}  {"signingSecret",…}: the old secret signs too for the grace period
//	DELETE /admin/v1/merchants/{merchantId}/notifications               {"merchantId"}: notifications stop
//
// rotationGrace is the grace period when a rotation names none.
func (s *Server) WithAdmin(a Admin, rotationGrace time.Duration) *Server {
	h := adminHandlers{s: s, a: a, grace: rotationGrace}
	s.adminRoute(http.MethodPost, "/admin/v1/merchants", h.create)
	s.adminRoute(http.MethodGet, "/admin/v1/merchants", h.list)
	s.adminRoute(http.MethodGet, "/admin/v1/merchants/{merchantId}", h.show)
	s.adminRoute(http.MethodPut, "/admin/v1/merchants/{merchantId}/toss-key", h.setTossKey)
	s.adminRoute(http.MethodPut, "/admin/v1/merchants/{merchantId}/commission", h.setCommission)
	s.adminRoute(http.MethodPut, "/admin/v1/merchants/{merchantId}/fee-rate", h.setFeeRate)
	s.adminRoute(http.MethodPost, "/admin/v1/merchants/{merchantId}/keys", h.issueKey)
	s.adminRoute(http.MethodGet, "/admin/v1/merchants/{merchantId}/keys", h.listKeys)
	s.adminRoute(http.MethodPost, "/admin/v1/merchants/{merchantId}/keys/{keyId}/revoke", h.revokeKey)
	s.adminRoute(http.MethodPost, "/admin/v1/merchants/{merchantId}/keys/{keyId}/rotate", h.rotateKey)
	s.adminRoute(http.MethodPut, "/admin/v1/merchants/{merchantId}/notifications", h.setNotificationURL)
	s.adminRoute(http.MethodPost, "/admin/v1/merchants/{merchantId}/notifications/rotate-secret", h.rotateNotificationSecret)
	s.adminRoute(http.MethodDelete, "/admin/v1/merchants/{merchantId}/notifications", h.removeNotificationURL)
	return s
}

type adminHandlers struct {
	s     *Server
	a     Admin
	grace time.Duration
}

func (h adminHandlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, h.s.logger, err)
}

func merchantVar(r *http.Request) (domain.MerchantID, error) {
	id, err := domain.ParseMerchantID(mux.Vars(r)["merchantId"])
	if err != nil {
		return "", domain.Errorf(domain.ErrMerchantNotFound, "no such merchant")
	}
	return id, nil
}

func (h adminHandlers) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name          string `json:"name"`
		TossSecretKey string `json:"tossSecretKey"`
		MerchantID    string `json:"merchantId"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.a.Create(r.Context(), merchants.CreateInput{ID: domain.MerchantID(req.MerchantID), Name: req.Name,
		TossSecretKey: req.TossSecretKey, Actor: merchants.ActorAdmin})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (h adminHandlers) list(w http.ResponseWriter, r *http.Request) {
	ms, err := h.a.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"merchants": ms})
}

// forMerchant answers a route on the merchant of the path: f's result with status, or its error.
func (h adminHandlers) forMerchant(w http.ResponseWriter, r *http.Request, status int, f func(domain.MerchantID) (any, error)) {
	id, err := merchantVar(r)
	if err == nil {
		var res any
		if res, err = f(id); err == nil {
			writeJSON(w, status, res)
			return
		}
	}
	h.fail(w, r, err)
}

// optionalJSON decodes a body that may be left out.
func optionalJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(w, r, dst)
}

func (h adminHandlers) show(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		return h.a.Show(r.Context(), id)
	})
}

func (h adminHandlers) setTossKey(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		var req struct {
			TossSecretKey string `json:"tossSecretKey"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, err
		}
		return h.a.SetTossKey(r.Context(), id, req.TossSecretKey, merchants.ActorAdmin)
	})
}

func (h adminHandlers) setCommission(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		var req struct {
			Rate string `json:"rate"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, err
		}
		rate, err := parseRate(req.Rate)
		if err != nil {
			return nil, err
		}
		return h.a.SetCommission(r.Context(), id, rate, merchants.ActorAdmin)
	})
}

func (h adminHandlers) setFeeRate(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		var req struct {
			Rate string `json:"rate"`
			From string `json:"from"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, err
		}
		rate, err := domain.ParseFraction(req.Rate)
		if err != nil {
			return nil, badRequest("INVALID_REQUEST", "rate must be a decimal fraction such as \"0.0341\" (3.41%%), got %q", truncate(req.Rate, 40))
		}
		var from time.Time
		if req.From != "" {
			if from, err = time.ParseInLocation(time.DateOnly, req.From, domain.KST); err != nil {
				return nil, badRequest("INVALID_REQUEST", "from must be a KST day such as \"2026-11-01\", got %q", truncate(req.From, 40))
			}
		}
		return h.a.SetTossFeeRate(r.Context(), id, rate, from, merchants.ActorAdmin)
	})
}

// parseRate reads a commission rate: a plain decimal fraction such as "0.1".
func parseRate(s string) (decimal.Decimal, error) {
	d, err := domain.ParseFraction(s)
	if err != nil {
		return decimal.Decimal{}, badRequest("INVALID_REQUEST", "rate must be a decimal fraction such as \"0.1\" (10%%), got %q", truncate(s, 40))
	}
	return d, domain.CheckCommissionRate(d)
}

func (h adminHandlers) issueKey(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusCreated, func(id domain.MerchantID) (any, error) {
		var req struct {
			Scopes []string `json:"scopes"`
		}
		if err := optionalJSON(w, r, &req); err != nil {
			return nil, err
		}
		var scopes []domain.Scope
		if req.Scopes != nil {
			var err error
			if scopes, err = domain.ParseScopes(req.Scopes); err != nil {
				return nil, err
			}
		}
		return h.a.IssueKey(r.Context(), id, scopes, merchants.ActorAdmin)
	})
}

func (h adminHandlers) listKeys(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		d, err := h.a.Show(r.Context(), id)
		if err != nil {
			return nil, err
		}
		return map[string]any{"merchantId": d.MerchantID, "keys": d.Keys}, nil
	})
}

func (h adminHandlers) revokeKey(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		return h.a.RevokeKey(r.Context(), id, domain.APIKeyID(mux.Vars(r)["keyId"]), merchants.ActorAdmin)
	})
}

func (h adminHandlers) rotateKey(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusCreated, func(id domain.MerchantID) (any, error) {
		var req struct {
			GracePeriod string `json:"gracePeriod"`
		}
		if err := optionalJSON(w, r, &req); err != nil {
			return nil, err
		}
		grace := h.grace
		if req.GracePeriod != "" {
			var err error
			if grace, err = time.ParseDuration(req.GracePeriod); err != nil || grace < 0 || grace > domain.MaxRotationGrace {
				return nil, badRequest("INVALID_REQUEST", "gracePeriod must be a duration from 0s to %s such as \"24h\", got %q", domain.MaxRotationGrace, truncate(req.GracePeriod, 40))
			}
		}
		return h.a.RotateKey(r.Context(), id, domain.APIKeyID(mux.Vars(r)["keyId"]), grace, merchants.ActorAdmin)
	})
}

func (h adminHandlers) setNotificationURL(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		var req struct {
			URL string `json:"url"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, err
		}
		return h.a.SetNotificationURL(r.Context(), id, req.URL, merchants.ActorAdmin)
	})
}

func (h adminHandlers) rotateNotificationSecret(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		var req struct {
			GracePeriod string `json:"gracePeriod"`
		}
		if err := optionalJSON(w, r, &req); err != nil {
			return nil, err
		}
		grace := merchants.DefaultNotificationGrace
		if req.GracePeriod != "" {
			var err error
			if grace, err = time.ParseDuration(req.GracePeriod); err != nil || grace < 0 || grace > domain.MaxRotationGrace {
				return nil, badRequest("INVALID_REQUEST", "gracePeriod must be a duration from 0s to %s such as \"24h\", got %q", domain.MaxRotationGrace, truncate(req.GracePeriod, 40))
			}
		}
		return h.a.RotateNotificationSecret(r.Context(), id, grace, merchants.ActorAdmin)
	})
}

func (h adminHandlers) removeNotificationURL(w http.ResponseWriter, r *http.Request) {
	h.forMerchant(w, r, http.StatusOK, func(id domain.MerchantID) (any, error) {
		return h.a.RemoveNotificationURL(r.Context(), id, merchants.ActorAdmin)
	})
}
