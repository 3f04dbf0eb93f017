package api

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
)

// destinationFree checks at submission that a request's output destination
// does not already hold, lie inside or contain another execution's output:
// an output directory belongs to one execution for ever. It returns 0 when
// the destination is free, or the status and message to answer with. The
// processor checks again when it writes, which settles two submissions
// racing for the same name.
func (s *Server) destinationFree(ctx context.Context, p Principal, out events.OutputSpec) (int, string) {
	dest := out.Destination
	if dest == "" || s.store == nil {
		return 0, "" // the default destination is the new execution's own id
	}
	newVersion := out.Overwrite == events.OverwriteNewVersion
	holders, err := s.store.DestinationHolders(ctx, dest)
	if err != nil {
		s.log.Error("api: destination check", "err", err)
		return http.StatusServiceUnavailable, "the database is unavailable; retry shortly"
	}
	for _, h := range holders {
		if h.Destination != dest {
			return http.StatusConflict, fmt.Sprintf("output.destination %q lies inside, or contains, the output of another execution; choose a destination of its own", dest)
		}
		if !newVersion || h.UserID != p.UserID {
			return http.StatusConflict, taken(dest, h.UserID == p.UserID, h.ExecutionID)
		}
	}
	if s.outputRoot == "" || strings.HasPrefix(dest, "s3://") {
		return 0, ""
	}
	// Outputs written before this read model existed, or by hand.
	root, err := filepath.EvalSymlinks(s.outputRoot)
	if err != nil {
		return 0, "" // no output yet at all
	}
	final, err := sink.Confine(root, dest)
	if err != nil {
		return http.StatusBadRequest, "output.destination: " + err.Error()
	}
	if err := sink.CheckBeneath(root, final); err != nil {
		return http.StatusBadRequest, fmt.Sprintf("output.destination %q passes through a symbolic link in the output root, which outputs never follow; choose another destination", dest)
	}
	if _, err := sink.Claim(root, final, sink.Ownership{UserID: p.UserID}, newVersion); err != nil {
		return http.StatusConflict, fmt.Sprintf("output.destination %q: %v; choose another destination", dest, err)
	}
	return 0, ""
}

func taken(dest string, same bool, id string) string {
	if same {
		return fmt.Sprintf("output.destination %q already holds the output of your execution %s; choose another destination, or send \"overwrite\": \"new_version\" to write a new version beside it", dest, id)
	}
	return fmt.Sprintf("output.destination %q already holds another user's output; choose another destination", dest)
}
