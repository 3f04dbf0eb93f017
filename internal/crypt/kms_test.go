package crypt

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/dspipe/dspipe/internal/testwait"
)

// startLocalKMS runs local-kms (a KMS-compatible server, go-installed by
// .ci/run) on a free loopback port and returns its endpoint.
func startLocalKMS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("local-kms")
	if err != nil {
		if p := filepath.Join(os.Getenv("HOME"), "go", "bin", "local-kms"); fileExists(p) {
			bin = p
		} else if os.Getenv("CI") == "true" {
			t.Fatal("local-kms is not installed: .ci/run installs it")
		} else {
			t.Skip("SKIPPED: local-kms is not installed (go install github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "KMS_DATA_PATH="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testwait.For(t, 20*time.Second, "local-kms never listened", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "http://" + addr
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestKMSProviderAgainstARealKMSServer: data keys made by KMS's
// GenerateDataKey open again through Decrypt with the same execution as
// encryption context and with no other, using aws-sdk-go-v2 against a
// KMS-compatible server on loopback.
func TestKMSProviderAgainstARealKMSServer(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ep := startLocalKMS(t)
	ctx := context.Background()
	p, err := NewKMS(ctx, "", "eu-west-2", ep)
	if err != nil {
		t.Fatal(err)
	}
	key, err := p.client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("dspipe test")})
	if err != nil {
		t.Fatal(err)
	}
	p.keyID = aws.ToString(key.KeyMetadata.KeyId)
	plain, wrapped, ref, err := p.GenerateDataKey(ctx, "ds_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != KeySize {
		t.Fatalf("a %d-byte data key", len(plain))
	}
	got, err := p.Unwrap(ctx, "ds_1", ref, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(plain) {
		t.Fatal("KMS returned another key")
	}
	if _, err := p.Unwrap(ctx, "ds_2", ref, wrapped); err == nil {
		t.Fatal("a data key opened under another execution's encryption context")
	}
	dk, err := NewDataKey(got)
	if err != nil {
		t.Fatal(err)
	}
	ad := AD(nil, "ds_1", PlaceRaw, "rec", 0, 1)
	if _, err := dk.Open(nil, dk.Seal(nil, []byte("x"), ad), ad); err != nil {
		t.Fatal(err)
	}
}
