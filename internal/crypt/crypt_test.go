package crypt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestPayloadsOpenOnlyAtTheirPlace: a sealed payload opens with its key at
// its place (execution, topic, kind, source, position) and nowhere else.
func TestPayloadsOpenOnlyAtTheirPlace(t *testing.T) {
	t.Parallel()
	k, err := NewDataKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDataKey(NewKey())
	ad := AD(nil, "ds_1", PlaceRaw, "rec", 0, 7)
	sealed := k.Seal(nil, []byte("Zelda Quarrington"), ad)
	plain, err := k.Open(nil, sealed, ad)
	if err != nil || string(plain) != "Zelda Quarrington" {
		t.Fatalf("open: %q %v", plain, err)
	}
	for name, moved := range map[string][]byte{
		"another execution": AD(nil, "ds_2", PlaceRaw, "rec", 0, 7),
		"another topic":     AD(nil, "ds_1", PlaceStaged, "rec", 0, 7),
		"another kind":      AD(nil, "ds_1", PlaceRaw, "bad", 0, 7),
		"another source":    AD(nil, "ds_1", PlaceRaw, "rec", 1, 7),
		"another position":  AD(nil, "ds_1", PlaceRaw, "rec", 0, 8),
	} {
		if _, err := k.Open(nil, sealed, moved); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := other.Open(nil, sealed, ad); !errors.Is(err, ErrOpen) {
		t.Error("another key opened it")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open(nil, sealed, ad); !errors.Is(err, ErrOpen) {
		t.Error("a changed ciphertext opened")
	}
}

// TestKeyringRotationAndShredding: a data key wrapped under version 1
// still opens after rotating to version 2; new keys use version 2;
// removing version 1 makes the version-1 data key, and so its data,
// unreadable.
func TestKeyringRotationAndShredding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyring.json")
	k, created, err := LoadKeyring(path, true)
	if err != nil || !created {
		t.Fatal(err)
	}
	plain1, wrapped1, ref1, err := k.GenerateDataKey(ctx, "ds_1")
	if err != nil || ref1 != "local:1" {
		t.Fatal(ref1, err)
	}
	dk1, _ := NewDataKey(plain1)
	ad := AD(nil, "ds_1", PlaceRaw, "rec", 0, 1)
	data := dk1.Seal(nil, []byte("text under v1"), ad)

	if v, err := k.Rotate(); err != nil || v != 2 {
		t.Fatal(v, err)
	}
	k, _, err = LoadKeyring(path, false) // as another process would
	if err != nil {
		t.Fatal(err)
	}
	_, _, ref2, err := k.GenerateDataKey(ctx, "ds_2")
	if err != nil || ref2 != "local:2" {
		t.Fatalf("new data keys use the new version: %s %v", ref2, err)
	}
	again, err := k.Unwrap(ctx, "ds_1", ref1, wrapped1)
	if err != nil {
		t.Fatalf("version 1 still opens after the rotation: %v", err)
	}
	if _, err := k.Unwrap(ctx, "ds_2", ref1, wrapped1); err == nil {
		t.Error("a wrapped key opened for another execution")
	}
	dk, _ := NewDataKey(again)
	if _, err := dk.Open(nil, data, ad); err != nil {
		t.Fatal(err)
	}
	if err := k.Remove(1); err != nil {
		t.Fatal(err)
	}
	k, _, _ = LoadKeyring(path, false)
	if _, err := k.Unwrap(ctx, "ds_1", ref1, wrapped1); !errors.Is(err, ErrUnknownKEK) {
		t.Fatalf("version 1 removed: its data keys must not open, got %v", err)
	}
	if err := k.Remove(2); err == nil {
		t.Error("the active version cannot be removed")
	}
}

// BenchmarkSealOpen is the cost of encrypting and decrypting one record
// payload of a typical size (2 KB), as the hot path does once each way.
func BenchmarkSealOpen(b *testing.B) {
	k, _ := NewDataKey(NewKey())
	plain := make([]byte, 2048)
	ad := AD(nil, "ds_1795000000_0123456789abcdef", PlaceRaw, "rec", 0, 12345)
	var sealed, out []byte
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		sealed = k.Seal(sealed[:0], plain, ad)
		var err error
		if out, err = k.Open(out[:0], sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
