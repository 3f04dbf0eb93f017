package api

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/wire"
)

// MaxErased bounds the records one erasure names in each list.
const MaxErased = 10000

// erase records an erasure of data subjects or records: the request names
// record ids (as in outputs) or sources' own record ids with their source
// names. Only pseudonyms are kept: record ids, and source ids as the keyed
// hashes outputs carry in metadata.source_id; the ids themselves are never
// stored, logged or put in the trail. Every execution that starts
// afterwards drops those records with reason "erased". Rewriting outputs of
// finished executions is not built: delete them (DELETE …/data) or rerun.
func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RecordIDs []string `json:"record_ids"`
		SourceIDs []struct {
			Source string `json:"source"`
			ID     string `json:"id"`
		} `json:"source_ids"`
	}
	if code, err := readJSON(r.Body, 4<<20, &body, false); err != nil {
		writeError(w, code, `body must be {"record_ids": ["..."], "source_ids": [{"source": "name", "id": "..."}]}: `+err.Error())
		return
	}
	n := len(body.RecordIDs) + len(body.SourceIDs)
	if n == 0 || len(body.RecordIDs) > MaxErased || len(body.SourceIDs) > MaxErased {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name at least one record, and at most %d in each of record_ids and source_ids", MaxErased))
		return
	}
	e := store.Erasure{ID: "er_" + NewExecutionID()[3:], By: principalFrom(r.Context()).UserID}
	for i, id := range body.RecordIDs {
		if id == "" || len(id) > 128 || hasControl(id) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("record_ids[%d]: a record id of 1 to 128 characters", i))
			return
		}
		e.RecordIDs = append(e.RecordIDs, id)
	}
	for i, sid := range body.SourceIDs {
		if sid.Source == "" || sid.ID == "" || utf8.RuneCountInString(sid.Source) > 128 || utf8.RuneCountInString(sid.ID) > 1024 ||
			strings.ContainsRune(sid.Source+sid.ID, 0) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("source_ids[%d]: give the source's name and the record's own id", i))
			return
		}
		e.SourceIDHashes = append(e.SourceIDHashes, stage.SourceIDHash(s.recordIDKey, sid.Source, sid.ID))
	}
	if err := s.store.InsertErasure(r.Context(), e); err != nil {
		s.log.Error("api: erasure", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	noteAccess(r.Context(), func(a *accessInfo) { a.execution = e.ID })
	// Finished outputs that may hold the records are rewritten without
	// them by the processor that owns each execution.
	ids, err := s.store.FinishedOutputs(r.Context())
	if err != nil {
		s.log.Error("api: erasure", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the erasure is recorded, but finished outputs could not be listed; send it again to rewrite them")
		return
	}
	for _, id := range ids {
		if err := s.send(r.Context(), wire.Command{Kind: wire.CmdApplyErasure, ExecutionID: id, UserID: e.By, Message: e.ID}); err != nil {
			writeError(w, http.StatusServiceUnavailable, "the erasure is recorded, but the event log is unavailable; send it again to rewrite finished outputs")
			return
		}
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"erasure_id": e.ID, "records": n,
		"applies_to": "every execution that starts from now on drops these records with reason erased",
		"checking":   ids,
		"rewritten":  "each finished output holding any of them is written again without them (event dataset.execution.output_rewritten; statistics show the new output_dir)"})
}
