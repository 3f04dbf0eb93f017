// Package audit signs and verifies the audit trail: Ed25519 seals over the
// head of each hash chain (an execution's events, an API instance's access
// records), so that a trail cut short, edited and re-hashed, or rebuilt
// from scratch no longer verifies. It is pure: keys come in as bytes or
// files, trails as decoded envelopes.
package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dspipe/dspipe/events"
)

// Signer seals chain heads with one Ed25519 key.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
}

// NewSigner wraps a private key.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{priv: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of its
// 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// KeyID is the signer's key id.
func (s *Signer) KeyID() string { return s.keyID }

// PublicKey is the key auditors verify with.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Seal signs the chain head (seq, hash) of subject as an event of type typ
// (one of the seal types).
func (s *Signer) Seal(typ, subject string, seq uint64, hash string) *events.Seal {
	seal := events.NewSeal(typ)
	seal.Seq, seal.Hash, seal.KeyID = seq, hash, s.keyID
	seal.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, events.SealMessage(typ, subject, seq, hash)))
	return seal
}

// LoadOrCreateKey reads a PKCS #8 PEM Ed25519 private key (what
// `openssl genpkey -algorithm ed25519` writes). When the file does not
// exist and create is set, a new key is written there with mode 0600;
// created says so, for the caller to warn.
func LoadOrCreateKey(path string, create bool) (s *Signer, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("audit: signing key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKey(path, false) // another service made it first
		}
		if err != nil {
			return nil, false, fmt.Errorf("audit: create signing key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, false, err
		}
		if err := f.Close(); err != nil {
			return nil, false, err
		}
		return NewSigner(priv), true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit: read signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("audit: %s is not a PEM \"PRIVATE KEY\" (PKCS #8) file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("audit: parse signing key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("audit: %s holds a %T key; the audit trail is signed with Ed25519", path, k)
	}
	return NewSigner(priv), false, nil
}

// PublicKeyPEM encodes a public key as a PEM "PUBLIC KEY" (PKIX) block.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Keys are the public keys a verifier trusts, by key id.
type Keys map[string]ed25519.PublicKey

// ParsePublicKeys reads every PEM "PUBLIC KEY" block of b (Ed25519 only).
func ParsePublicKeys(b []byte) (Keys, error) {
	keys := Keys{}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: parse public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: a %T public key; the audit trail is signed with Ed25519", k)
		}
		keys[KeyID(pub)] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("audit: no PEM PUBLIC KEY block found")
	}
	return keys, nil
}
