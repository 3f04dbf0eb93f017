package api

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// Roles of the security model.
const (
	RoleSubmitter = "submitter"
	RoleViewer    = "viewer"
	RoleReviewer  = "reviewer"
	RoleAuditor   = "auditor"
	RoleAdmin     = "admin"
	RoleService   = "service"
)

var validRoles = map[string]bool{RoleSubmitter: true, RoleViewer: true, RoleReviewer: true, RoleAuditor: true, RoleAdmin: true, RoleService: true}

// Principal is an authenticated caller.
type Principal struct {
	UserID string
	Role   string
}

// seesAll reports whether the caller may read every user's executions
// (status, statistics, the active list, the live feed). A viewer is a
// read-only observer of every execution: operations dashboards and data
// stewards, who see progress and figures but never a trail, a review or
// the access audit, and change nothing.
func (p Principal) seesAll() bool {
	return p.Role == RoleAdmin || p.Role == RoleAuditor || p.Role == RoleReviewer || p.Role == RoleService || p.Role == RoleViewer
}

type token struct {
	secret []byte
	Principal
}

// ParseTokens reads "token:user:role" entries separated by commas
// (DSPIPE_API_TOKENS).
func ParseTokens(s string) ([]token, error) {
	var out []token
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) != 3 || len(parts[0]) < 8 || parts[1] == "" || !validRoles[parts[2]] {
			return nil, fmt.Errorf("DSPIPE_API_TOKENS entries must be token:user:role with a token of 8+ characters and a role among submitter, viewer, reviewer, auditor, admin, service")
		}
		out = append(out, token{secret: []byte(parts[0]), Principal: Principal{UserID: parts[1], Role: parts[2]}})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("DSPIPE_API_TOKENS has no tokens")
	}
	return out, nil
}

type ctxKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(ctxKey{}).(Principal)
	return p
}

// authenticate accepts "Authorization: Bearer <token>" only.
func (s *Server) authenticate(next http.Handler) http.Handler { return s.auth(next, false) }

// authenticateWS also accepts the "token" query parameter, for WebSocket
// clients (browsers) that cannot set headers. Only the WebSocket route
// takes it: a token in a URL ends up in proxies' and browsers' histories.
func (s *Server) authenticateWS(next http.Handler) http.Handler { return s.auth(next, true) }

func (s *Server) auth(next http.Handler, query bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			raw = ""
		}
		if h == "" && query {
			raw = r.URL.Query().Get("token")
		}
		for _, t := range s.tokens {
			if raw != "" && subtle.ConstantTimeCompare([]byte(raw), t.secret) == 1 {
				noteAccess(r.Context(), func(a *accessInfo) { a.principal = t.Principal })
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t.Principal)))
				return
			}
		}
		msg := "missing or unknown bearer token: send Authorization: Bearer <token>"
		if !query && h == "" && r.URL.Query().Has("token") {
			msg = "the token query parameter is only accepted by the WebSocket endpoint: send Authorization: Bearer <token>"
		}
		writeError(w, http.StatusUnauthorized, msg)
	})
}

func requireRole(roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := principalFrom(r.Context())
			for _, role := range roles {
				if p.Role == role {
					next.ServeHTTP(w, r)
					return
				}
			}
			writeError(w, http.StatusForbidden, fmt.Sprintf("role %q may not do this; it needs one of %s", p.Role, strings.Join(roles, ", ")))
		})
	}
}
