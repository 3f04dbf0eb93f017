package crypt

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go/logging"
)

// Provider makes and unwraps data keys with a key-encryption key it never
// hands out. ref names how a key was wrapped (which keyring version, which
// KMS key), so old data keys keep opening after a rotation.
type Provider interface {
	// GenerateDataKey returns a new data key, plain and wrapped, bound to
	// the execution.
	GenerateDataKey(ctx context.Context, execution string) (plain, wrapped []byte, ref string, err error)
	// Unwrap returns the plain data key of a wrapped one.
	Unwrap(ctx context.Context, execution, ref string, wrapped []byte) ([]byte, error)
}

// ErrUnknownKEK is returned when a wrapped key names a key-encryption key
// the provider does not have (a keyring version removed: shredded).
var ErrUnknownKEK = errors.New("crypt: the key-encryption key of this data key is not in the keyring")

// Keyring is the local provider: key-encryption keys by version in a file
// (mode 0600), the active one wrapping new data keys. For development and
// the embedded default; production uses KMS.
type Keyring struct {
	path string
	mu   sync.RWMutex
	file keyringFile
}

type keyringFile struct {
	Active int               `json:"active"`
	Keys   map[string]string `json:"keys"` // version -> base64 key
}

// LoadKeyring reads the keyring at path; when it does not exist and create
// is set, a keyring with one version is written (created says so).
func LoadKeyring(path string, create bool) (k *Keyring, created bool, err error) {
	k = &Keyring{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		k.file = keyringFile{Active: 1, Keys: map[string]string{"1": base64.StdEncoding.EncodeToString(NewKey())}}
		if err := k.write(true); err != nil {
			if errors.Is(err, os.ErrExist) {
				return LoadKeyring(path, false)
			}
			return nil, false, err
		}
		return k, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("crypt: read keyring: %w", err)
	}
	if err := json.Unmarshal(b, &k.file); err != nil {
		return nil, false, fmt.Errorf("crypt: keyring %s is not a keyring file: %w", path, err)
	}
	if _, err := k.kek(k.file.Active); err != nil {
		return nil, false, fmt.Errorf("crypt: keyring %s: the active version %d: %w", path, k.file.Active, err)
	}
	return k, false, nil
}

// write stores the keyring with mode 0600, atomically.
func (k *Keyring) write(exclusive bool) error {
	b, err := json.MarshalIndent(k.file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("crypt: keyring directory: %w", err)
	}
	if exclusive {
		f, err := os.OpenFile(k.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, k.path)
}

// Rotate adds a new version and makes it active; data keys wrapped by
// older versions keep opening while those versions stay in the file.
func (k *Keyring) Rotate() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := 0
	for v := range k.file.Keys {
		if n, _ := strconv.Atoi(v); n > next {
			next = n
		}
	}
	next++
	k.file.Keys[strconv.Itoa(next)] = base64.StdEncoding.EncodeToString(NewKey())
	k.file.Active = next
	return next, k.write(false)
}

// Remove deletes a version from the keyring: every data key it wrapped,
// and so every record under those data keys, becomes unreadable.
func (k *Keyring) Remove(v int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v == k.file.Active {
		return fmt.Errorf("crypt: version %d is active; rotate first", v)
	}
	if _, ok := k.file.Keys[strconv.Itoa(v)]; !ok {
		return fmt.Errorf("crypt: no version %d", v)
	}
	delete(k.file.Keys, strconv.Itoa(v))
	return k.write(false)
}

// Versions lists the keyring's versions and the active one.
func (k *Keyring) Versions() (versions []int, active int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for v := range k.file.Keys {
		n, _ := strconv.Atoi(v)
		versions = append(versions, n)
	}
	return versions, k.file.Active
}

func (k *Keyring) kek(v int) (cipher.AEAD, error) {
	s, ok := k.file.Keys[strconv.Itoa(v)]
	if !ok {
		return nil, ErrUnknownKEK
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("crypt: keyring version %d is not a 32-byte base64 key", v)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// KEK returns a version's key-encryption key as a data key, for tests that
// try every version on a payload.
func (k *Keyring) KEK(v int) (*DataKey, error) {
	k.mu.RLock()
	s, ok := k.file.Keys[strconv.Itoa(v)]
	k.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownKEK
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return NewDataKey(key)
}

func wrapAD(execution string) []byte { return []byte("dspipe-data-key-v1\x00" + execution) }

// GenerateDataKey makes a data key wrapped by the active version.
func (k *Keyring) GenerateDataKey(_ context.Context, execution string) ([]byte, []byte, string, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	a, err := k.kek(k.file.Active)
	if err != nil {
		return nil, nil, "", err
	}
	plain := NewKey()
	nonce := NewKey()[:a.NonceSize()]
	wrapped := a.Seal(append([]byte(nil), nonce...), nonce, plain, wrapAD(execution))
	return plain, wrapped, "local:" + strconv.Itoa(k.file.Active), nil
}

// Unwrap opens a data key wrapped by any version still in the keyring.
func (k *Keyring) Unwrap(_ context.Context, execution, ref string, wrapped []byte) ([]byte, error) {
	v, err := strconv.Atoi(strings.TrimPrefix(ref, "local:"))
	if err != nil || !strings.HasPrefix(ref, "local:") {
		return nil, fmt.Errorf("crypt: %q is not a local keyring reference", ref)
	}
	k.mu.RLock()
	a, err := k.kek(v)
	k.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if len(wrapped) < a.NonceSize() {
		return nil, ErrOpen
	}
	plain, err := a.Open(nil, wrapped[:a.NonceSize()], wrapped[a.NonceSize():], wrapAD(execution))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// KMS is the AWS KMS provider: GenerateDataKey and Decrypt under one
// customer master key, with the execution id as encryption context.
type KMS struct {
	client *kms.Client
	keyID  string
}

// NewKMS builds the KMS provider (region, an optional endpoint for a
// KMS-compatible server, credentials from the default AWS chain).
func NewKMS(ctx context.Context, keyID, region, endpoint string) (*KMS, error) {
	if region == "" {
		region = "us-east-1"
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(logging.Nop{}))
	if err != nil {
		return nil, fmt.Errorf("crypt: AWS configuration: %w", err)
	}
	c := kms.NewFromConfig(ac, func(o *kms.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &KMS{client: c, keyID: keyID}, nil
}

// GenerateDataKey asks KMS for a new AES-256 data key.
func (m *KMS) GenerateDataKey(ctx context.Context, execution string) ([]byte, []byte, string, error) {
	out, err := m.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(m.keyID), KeySpec: kmstypes.DataKeySpecAes256,
		EncryptionContext: map[string]string{"execution_id": execution}})
	if err != nil {
		return nil, nil, "", fmt.Errorf("crypt: KMS GenerateDataKey: %w", err)
	}
	return out.Plaintext, out.CiphertextBlob, "kms:" + aws.ToString(out.KeyId), nil
}

// Unwrap asks KMS to decrypt a data key.
func (m *KMS) Unwrap(ctx context.Context, execution, ref string, wrapped []byte) ([]byte, error) {
	if !strings.HasPrefix(ref, "kms:") {
		return nil, fmt.Errorf("crypt: %q is not a KMS reference", ref)
	}
	out, err := m.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, KeyId: aws.String(strings.TrimPrefix(ref, "kms:")),
		EncryptionContext: map[string]string{"execution_id": execution}})
	if err != nil {
		return nil, fmt.Errorf("crypt: KMS Decrypt: %w", err)
	}
	return out.Plaintext, nil
}
