package sink

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOutputsNeverFollowALinkInTheRoot plants a symbolic link inside the
// output root pointing outside it: creating, checking or staging a
// destination through it fails, and nothing appears outside the root.
func TestOutputsNeverFollowALinkInTheRoot(t *testing.T) {
	t.Parallel()
	root, err := Root(t.TempDir())
	require.NoError(t, err)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "evil")))

	dest, err := Confine(root, "evil/run")
	require.NoError(t, err, "the name alone is inside the root")
	require.ErrorIs(t, MkdirBeneath(root, dest), ErrSymlink)
	require.ErrorIs(t, CheckBeneath(root, dest), ErrSymlink)
	_, err = NewStaging(root, dest)
	require.ErrorIs(t, err, ErrSymlink)
	_, err = NewStaging(root, filepath.Join(root, "evil", "deeper", "run"))
	require.ErrorIs(t, err, ErrSymlink)
	ents, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing was written outside the root")

	// A link as the destination itself is taken, never replaced.
	_, err = Claim(root, filepath.Join(root, "evil"), Ownership{ExecutionID: "x", UserID: "u"}, true)
	require.Error(t, err)

	// Without links the same walk creates the directories.
	ok := filepath.Join(root, "a", "b", "run")
	require.NoError(t, MkdirBeneath(root, ok))
	require.DirExists(t, ok)
	require.NoError(t, CheckBeneath(root, filepath.Join(root, "missing", "x")))
}

func writeOutput(t *testing.T, dir, exec, user string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"execution_id":"`+exec+`","user_id":"`+user+`"}`), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.jsonl"), []byte("{}\n"), 0o640))
}

// TestClaimNeverTakesAnotherExecutionsDirectory checks who may write where:
// a free name is taken, an execution's own earlier attempt is reused, a
// name holding another execution's output is refused (for the same user
// only new_version moves to the next free version), and a destination
// inside another output is refused.
func TestClaimNeverTakesAnotherExecutionsDirectory(t *testing.T) {
	t.Parallel()
	root, err := Root(t.TempDir())
	require.NoError(t, err)
	shared := filepath.Join(root, "shared")
	alice1 := Ownership{ExecutionID: "ds_a1", UserID: "alice"}
	got, err := Claim(root, shared, alice1, false)
	require.NoError(t, err)
	require.Equal(t, shared, got)
	writeOutput(t, shared, "ds_a1", "alice")

	got, err = Claim(root, shared, alice1, false)
	require.NoError(t, err, "a rerun of the same execution rewrites its own directory")
	require.Equal(t, shared, got)

	_, err = Claim(root, shared, Ownership{ExecutionID: "ds_b1", UserID: "bob"}, false)
	require.ErrorIs(t, err, ErrTaken)
	_, err = Claim(root, shared, Ownership{ExecutionID: "ds_b1", UserID: "bob"}, true)
	require.ErrorIs(t, err, ErrTaken, "new_version is for the owner only")
	_, err = Claim(root, shared, Ownership{ExecutionID: "ds_a2", UserID: "alice"}, false)
	require.ErrorIs(t, err, ErrTaken, "the owner too must ask for a new version")

	got, err = Claim(root, shared, Ownership{ExecutionID: "ds_a2", UserID: "alice"}, true)
	require.NoError(t, err)
	require.Equal(t, shared+".v2", got)
	writeOutput(t, got, "ds_a2", "alice")
	got, err = Claim(root, shared, Ownership{ExecutionID: "ds_a2", UserID: "alice"}, true)
	require.NoError(t, err)
	require.Equal(t, shared+".v2", got, "a rerun finds its own version again")
	got, err = Claim(root, shared, Ownership{ExecutionID: "ds_a3", UserID: "alice"}, true)
	require.NoError(t, err)
	require.Equal(t, shared+".v3", got)

	_, err = Claim(root, filepath.Join(shared, "nested"), Ownership{ExecutionID: "ds_b2", UserID: "bob"}, false)
	require.ErrorIs(t, err, ErrTaken, "inside another output")

	// A directory without a manifest has no known owner: taken.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "stray"), 0o750))
	_, err = Claim(root, filepath.Join(root, "stray"), Ownership{ExecutionID: "ds_b3", UserID: "bob"}, true)
	require.ErrorIs(t, err, ErrTaken)
}

// TestCommitNeverReplacesAnOutputThatAppeared checks the publishing rename:
// an output another execution published while this one was written stays.
func TestCommitNeverReplacesAnOutputThatAppeared(t *testing.T) {
	t.Parallel()
	root, err := Root(t.TempDir())
	require.NoError(t, err)
	final := filepath.Join(root, "run")
	st, err := NewStaging(root, final)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(st.Dir, "manifest.json"), []byte(`{"execution_id":"mine"}`), 0o640))
	writeOutput(t, final, "theirs", "bob")
	require.ErrorIs(t, st.Commit(false), ErrTaken)
	o, _, err := OwnerOf(final)
	require.NoError(t, err)
	require.Equal(t, "theirs", o.ExecutionID)
	require.NoError(t, st.Commit(true), "its own earlier attempt is replaced")
	o, _, _ = OwnerOf(final)
	require.Equal(t, "mine", o.ExecutionID)
}
