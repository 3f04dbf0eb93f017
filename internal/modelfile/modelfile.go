// Package modelfile stores the detectors' trained models: a magic line
// naming the format, then the model's bytes, gzipped with no name and no
// time in the header, so the file depends only on the model and `make
// train` reproduces it bit for bit.
package modelfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
)

// Encode gzips magic followed by raw.
func Encode(magic string, raw []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(zw, magic); err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ErrFormat is a file that is not a model of the expected format.
var ErrFormat = errors.New("modelfile: not a model of this format")

// Decode reverses Encode: it returns the bytes after magic.
func Decode(magic string, gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(raw, []byte(magic)) {
		return nil, ErrFormat
	}
	return raw[len(magic):], nil
}
