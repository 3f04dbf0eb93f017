// Package crypt is the envelope encryption of record payloads at rest:
// AES-256-GCM under a data key per execution, whose additional
// authenticated data binds each payload to its execution, its place
// (its topic) and its position, so a ciphertext moved elsewhere does
// not open. Data keys are wrapped by a key-encryption key from a Provider
// (a local keyring, or AWS KMS) and stored wrapped; destroying the wrapped
// key makes every copy of the execution's records unreadable
// (crypto-shredding).
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// KeySize is the size of data keys and key-encryption keys: AES-256.
const KeySize = 32

// version is the first byte of every sealed payload.
const version = 1

// ErrOpen is returned when a payload does not open: the wrong key, the
// wrong place, or a changed ciphertext.
var ErrOpen = errors.New("crypt: payload does not open with this key at this place")

// DataKey encrypts and decrypts one execution's payloads. It is safe for
// concurrent use.
type DataKey struct {
	aead cipher.AEAD
}

// NewDataKey wraps 32 bytes of key material.
func NewDataKey(key []byte) (*DataKey, error) {
	a, err := NewAEAD(key)
	if err != nil {
		return nil, err
	}
	return &DataKey{aead: a}, nil
}

// NewAEAD is AES-256-GCM under 32 bytes of key material, for callers that
// choose their own nonces (a nonce must never repeat under one key).
func NewAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypt: a data key is %d bytes, got %d", KeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plaintext for the place ad names, appending to dst:
// version byte, 12-byte random nonce, ciphertext and tag.
func (k *DataKey) Seal(dst, plaintext, ad []byte) []byte {
	n := len(dst)
	dst = append(dst, version)
	dst = append(dst, make([]byte, 12)...)
	if _, err := rand.Read(dst[n+1 : n+13]); err != nil {
		panic("crypt: no randomness: " + err.Error())
	}
	return k.aead.Seal(dst, dst[n+1:n+13], plaintext, ad)
}

// Open decrypts a sealed payload for the place ad names, appending the
// plaintext to dst.
func (k *DataKey) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1+12+16 || sealed[0] != version {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(dst, sealed[1:13], sealed[13:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Overhead is how many bytes Seal adds.
const Overhead = 1 + 12 + 16

// Places of a payload, for AD (the processor's outcomes have their own).
const (
	PlaceRaw    = "raw"
	PlaceStaged = "staged"
)

// AD is the additional authenticated data of a payload: the execution, the
// place (the topic), the source index and the position within
// it, and for staged payloads their kind (a record, a rejection, a
// quarantined record), so no payload can be replayed as another.
func AD(dst []byte, execution, place, kind string, source int, position int64) []byte {
	dst = append(dst, "dspipe-record-v1\x00"...)
	dst = append(dst, execution...)
	dst = append(dst, 0)
	dst = append(dst, place...)
	dst = append(dst, 0)
	dst = append(dst, kind...)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(int64(source)))
	return binary.BigEndian.AppendUint64(dst, uint64(position))
}

// NewKey returns fresh random key material.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("crypt: no randomness: " + err.Error())
	}
	return k
}
