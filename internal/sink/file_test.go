package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// TestLineFileDescribesTheBytesOnDisk writes each compression and checks the
// reported size and SHA-256 are the file's, the content reads back, and
// the same lines give the same bytes twice.
func TestLineFileDescribesTheBytesOnDisk(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{CompressNone, CompressGzip, CompressZstd} {
		var first []byte
		for run := 0; run < 2; run++ {
			dir := t.TempDir()
			lf, err := Create(dir, "data.jsonl"+Extension(comp), comp)
			require.NoError(t, err)
			for i := 0; i < 5000; i++ {
				require.NoError(t, lf.WriteLine([]byte(`{"n":"line"}`)))
			}
			desc, err := lf.Close()
			require.NoError(t, err)
			onDisk, err := os.ReadFile(filepath.Join(dir, desc.Name))
			require.NoError(t, err)
			sum := sha256.Sum256(onDisk)
			require.Equal(t, hex.EncodeToString(sum[:]), desc.SHA256, comp)
			require.EqualValues(t, len(onDisk), desc.Bytes, comp)
			require.EqualValues(t, 5000, desc.Records)
			var r io.Reader = bytes.NewReader(onDisk)
			switch comp {
			case CompressGzip:
				r, err = gzip.NewReader(r)
				require.NoError(t, err)
			case CompressZstd:
				zr, err := zstd.NewReader(r)
				require.NoError(t, err)
				defer zr.Close()
				r = zr
			}
			plain, err := io.ReadAll(r)
			require.NoError(t, err)
			require.Equal(t, bytes.Repeat([]byte("{\"n\":\"line\"}\n"), 5000), plain, comp)
			if run == 0 {
				first = onDisk
			} else {
				require.Equal(t, first, onDisk, "%s output is byte-identical across runs", comp)
			}
		}
	}
}

func TestConfineKeepsOutputsUnderTheRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p, err := Confine(root, "run-1")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "run-1"), p)
	_, err = Confine(root, "../escape")
	require.Error(t, err)
	_, err = Confine(root, "/etc")
	require.Error(t, err)
}
