package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/trail"
)

const auditUsage = `usage:
  dsctl audit verify [-from api|postgres|kafka] [-public-key file.pem] <execution_id>
  dsctl audit export [-o trail.jsonl] <execution_id>     the trail as published, one event a line, and its public key
  dsctl audit access [-user U] [-execution ID] [-since RFC3339] [-limit N]
  dsctl audit access -verify [-public-key file.pem]          verify every access chain
  dsctl audit keygen -o key.pem                           a new Ed25519 signing key (DSPIPE_AUDIT_SIGNING_KEY)`

func cmdAudit(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New(auditUsage)
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, args[1:], getenv)
	case "export":
		return cmdAuditExport(ctx, args[1:], getenv)
	case "access":
		return cmdAuditAccess(ctx, args[1:], getenv)
	case "keygen":
		fs := flag.NewFlagSet("audit keygen", flag.ContinueOnError)
		out := fs.String("o", "", "where to write the private key (PKCS #8 PEM, mode 0600); must not exist")
		if err := fs.Parse(args[1:]); err != nil || *out == "" {
			return errors.New(auditUsage)
		}
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists; a signing key is never overwritten", *out)
		}
		s, _, err := audit.LoadOrCreateKey(*out, true)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %s (key id %s); its public key:\n%s", *out, s.KeyID(), audit.PublicKeyPEM(s.PublicKey()))
		return nil
	}
	return errors.New(auditUsage)
}

// cmdAuditVerify verifies a trail read from the API, Postgres or Kafka,
// with a pinned public key or the one the API publishes. It exits
// non-zero, naming the first broken position, when the trail does not
// verify.
func cmdAuditVerify(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	from := fs.String("from", "api", "where to read the trail: api, postgres (DATABASE_URL, DSPIPE_DB_SCHEMA) or kafka (KAFKA_BROKERS)")
	keyFile := fs.String("public-key", "", "PEM file of the trusted public key(s); default: the key the API publishes")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errors.New(auditUsage)
	}
	id := fs.Arg(0)
	keys, err := loadKeys(ctx, getenv, *keyFile)
	if err != nil {
		return err
	}
	var t trail.Trail
	switch *from {
	case "api":
		t, err = trail.FromAPI(ctx, apiClient(getenv), id)
	case "postgres":
		cfg, cerr := loadConfig(getenv)
		if cerr != nil {
			return cerr
		}
		st, serr := store.Open(ctx, cfg.DatabaseURL, cfg.DBSchema)
		if serr != nil {
			return serr
		}
		defer st.Close()
		t, err = trail.FromPostgres(ctx, st, id)
	case "kafka":
		cfg, cerr := loadConfig(getenv)
		if cerr != nil {
			return cerr
		}
		t, err = trail.FromKafka(ctx, cfg.Kafka, id)
	default:
		return fmt.Errorf("-from must be api, postgres or kafka")
	}
	if err != nil {
		return err
	}
	rep, err := t.Verify(keys)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("audit trail of %s (from %s) does NOT verify: first broken position %d: %s", id, *from, rep.BrokenAt, rep.Problem)
	}
	state := "sealed"
	if !rep.Sealed {
		state = "not sealed yet"
	}
	fmt.Printf("audit trail of %s (from %s) verifies: %d events, %d signed seals, signed through event %d, %s\n",
		id, *from, rep.Events, rep.Seals, rep.SignedThrough, state)
	for _, n := range rep.Notes {
		fmt.Println("note:", n)
	}
	return nil
}

// cmdAuditExport writes the trail exactly as published, one event a line,
// and the API's public key beside it (<file>.pub.pem), for verification
// without our code (docs/AUDIT.md).
func cmdAuditExport(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	out := fs.String("o", "", "output file (default <execution_id>.trail.jsonl)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errors.New(auditUsage)
	}
	id := fs.Arg(0)
	if *out == "" {
		*out = id + ".trail.jsonl"
	}
	c := apiClient(getenv)
	t, err := trail.FromAPI(ctx, c, id)
	if err != nil {
		return err
	}
	var pub struct {
		PEM string `json:"public_key_pem"`
	}
	if err := c.DoV1(ctx, "GET", "/audit/public-key", nil, &pub); err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, b := range t.Raw {
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pub.pem", []byte(pub.PEM), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d events) and %s\n", *out, len(t.Raw), *out+".pub.pem")
	return nil
}

// cmdAuditAccess lists the access audit (auditor or admin token).
func cmdAuditAccess(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit access", flag.ContinueOnError)
	user := fs.String("user", "", "only this user's calls")
	exec := fs.String("execution", "", "only calls about this execution")
	since := fs.String("since", "", "only calls at or after this RFC 3339 time")
	limit := fs.Int("limit", 1000, "at most this many (1..10000)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	verify := fs.Bool("verify", false, "verify every access chain (hash chain and seals) with the published key instead of listing")
	keyFile := fs.String("public-key", "", "with -verify: PEM file of the trusted public key(s)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errors.New(auditUsage)
	}
	if *verify {
		return verifyAccessChains(ctx, getenv, *keyFile)
	}
	q := []string{fmt.Sprintf("limit=%d", *limit)}
	for k, v := range map[string]string{"user": *user, "execution": *exec, "since": *since} {
		if v != "" {
			q = append(q, k+"="+url.QueryEscape(v))
		}
	}
	var out struct {
		Access []store.AccessRecord `json:"access"`
	}
	if err := apiClient(getenv).DoV1(ctx, "GET", "/audit/access?"+strings.Join(q, "&"), nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(out.Access)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tROLE\tACTION\tEXECUTION\tSTATUS\tFROM")
	for _, a := range out.Access {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Time.Format(time.RFC3339), dash(a.UserID), dash(a.Role), a.Action, dash(a.ExecutionID), a.Status, a.Remote)
	}
	return tw.Flush()
}

// verifyAccessChains fetches every access chain through the API and
// verifies each locally.
func verifyAccessChains(ctx context.Context, getenv func(string) string, keyFile string) error {
	c := apiClient(getenv)
	keys, err := loadKeys(ctx, getenv, keyFile)
	if err != nil {
		return err
	}
	var list struct {
		Chains []string `json:"chains"`
	}
	if err := c.DoV1(ctx, "GET", "/audit/access/chains", nil, &list); err != nil {
		return err
	}
	if len(list.Chains) == 0 {
		fmt.Println("no access chains recorded yet: nothing to verify")
		return nil
	}
	broken := 0
	for _, ch := range list.Chains {
		var one struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := c.DoV1(ctx, "GET", "/audit/access/chains?chain="+url.QueryEscape(ch), nil, &one); err != nil {
			return err
		}
		envs := make([]events.Envelope, 0, len(one.Events))
		for _, b := range one.Events {
			e, err := events.Decode(b)
			if err != nil {
				return fmt.Errorf("access chain %s: %w", ch, err)
			}
			envs = append(envs, e)
		}
		r := audit.VerifyAccess(ch, envs, keys)
		switch {
		case !r.OK():
			broken++
			fmt.Printf("%s: does NOT verify: first broken position %d: %s\n", ch, r.BrokenAt, r.Problem)
		case r.Sealed:
			fmt.Printf("%s: verifies: %d records and seals, sealed\n", ch, r.Events)
		default:
			fmt.Printf("%s: verifies: %d records and seals; %s\n", ch, r.Events, strings.Join(r.Notes, "; "))
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d of %d access chains do not verify", broken, len(list.Chains))
	}
	return nil
}

// loadKeys reads pinned public keys, or fetches the one the API publishes.
func loadKeys(ctx context.Context, getenv func(string) string, keyFile string) (audit.Keys, error) {
	if keyFile == "" {
		keys, err := trail.PublicKeyFromAPI(ctx, apiClient(getenv))
		if err != nil {
			return nil, fmt.Errorf("fetch the public key (or give -public-key): %w", err)
		}
		return keys, nil
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return audit.ParsePublicKeys(b)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
