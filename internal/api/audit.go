package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/store"
)

// publicKey serves the audit key's public half, so an auditor can check
// the seals without our code. It is public: it proves, it reveals nothing.
func (s *Server) publicKey(w http.ResponseWriter, _ *http.Request) {
	if s.signer == nil {
		writeError(w, http.StatusNotFound, "this API has no audit signing key configured (DSPIPE_AUDIT_SIGNING_KEY)")
		return
	}
	pub := s.signer.PublicKey()
	writeJSON(w, http.StatusOK, map[string]any{"algorithm": "Ed25519", "key_id": s.signer.KeyID(),
		"public_key_pem": string(audit.PublicKeyPEM(pub)), "seal_message": "dspipe-audit-seal-v1\\n<type>\\n<subject>\\n<seq>\\n<hash>\\n"})
}

// trustedKeys are the keys the server verifies with: its own.
func (s *Server) trustedKeys() audit.Keys {
	if s.signer == nil {
		return audit.Keys{}
	}
	return audit.Keys{s.signer.KeyID(): s.signer.PublicKey()}
}

// auditEvents returns an execution's audit trail as published, the read
// model's view of it (for the auditor's own comparison) and whether the
// trail verifies with the server's key: chain, seals, and the read model's
// owner and counts against what the events say.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	raws, err := s.store.EventsSince(r.Context(), x.ID, 0, 1_000_000)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	envs, list, err := decodeTrail(raws)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the audit trail holds an undecodable event")
		return
	}
	rm := ReadModelOf(x)
	rep := audit.VerifyExecution(x.ID, envs, s.trustedKeys())
	audit.CheckReadModel(&rep, rm)
	writeJSON(w, http.StatusOK, map[string]any{"execution_id": x.ID, "events": list, "verified": rep.OK(), "problem": rep.Problem,
		"report": rep, "read_model": rm})
}

// ReadModelOf is what the executions read model says about x.
func ReadModelOf(x store.Execution) audit.ReadModel {
	return audit.ReadModel{UserID: x.UserID, Status: x.Status, LastSeq: x.LastSeq, Received: x.Received, Valid: x.Valid, Rejected: x.Rejected}
}

// accessRecords lists the access audit for auditors: ?user=, ?execution=,
// ?since= (RFC 3339), ?limit= (1..10000, default 1000).
func (s *Server) accessRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AccessFilter{UserID: q.Get("user"), ExecutionID: q.Get("execution"), Limit: 1000}
	if len(f.UserID) > 200 || hasControl(f.UserID) {
		writeError(w, http.StatusBadRequest, "user must be a user id of at most 200 characters")
		return
	}
	if q.Has("execution") && !validID(f.ExecutionID) {
		writeError(w, http.StatusBadRequest, "execution is not a valid execution id")
		return
	}
	if q.Has("since") {
		t, err := time.Parse(time.RFC3339Nano, q.Get("since"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return
		}
		f.Since = t
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 10000")
			return
		}
		f.Limit = n
	}
	recs, err := s.store.AccessRecords(r.Context(), f)
	if err != nil {
		s.log.Error("api: access records", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	if recs == nil {
		recs = []store.AccessRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"access": recs, "count": len(recs)})
}

// accessChain returns one access chain as published and whether it
// verifies with the server's key.
func (s *Server) accessChain(w http.ResponseWriter, r *http.Request) {
	chain := r.URL.Query().Get("chain")
	if !r.URL.Query().Has("chain") {
		chains, err := s.store.AccessChains(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
			return
		}
		if chains == nil {
			chains = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"chains": chains})
		return
	}
	if !validID(chain) {
		writeError(w, http.StatusBadRequest, "chain is not a valid access chain id")
		return
	}
	raws, err := s.store.AccessChain(r.Context(), chain)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	if len(raws) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no access chain %q", chain))
		return
	}
	envs, list, err := decodeTrail(raws)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the access chain holds an undecodable event")
		return
	}
	rep := audit.VerifyAccess(chain, envs, s.trustedKeys())
	writeJSON(w, http.StatusOK, map[string]any{"chain": chain, "events": list, "verified": rep.OK(), "report": rep})
}

// decodeTrail decodes a trail as stored, keeping each event's bytes as
// published for the answer.
func decodeTrail(raws [][]byte) ([]events.Envelope, []json.RawMessage, error) {
	envs := make([]events.Envelope, 0, len(raws))
	list := make([]json.RawMessage, 0, len(raws))
	for _, b := range raws {
		e, err := events.Decode(b)
		if err != nil {
			return nil, nil, err
		}
		envs = append(envs, e)
		list = append(list, b)
	}
	return envs, list, nil
}
