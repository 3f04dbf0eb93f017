package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
)

// pgCounter is a TCP proxy in front of Postgres that counts the round
// trips one process makes: every ReadyForQuery message the server sends
// ends one query or transaction step. It measures the API's own use of
// Postgres apart from the projector's.
type pgCounter struct {
	ln     net.Listener
	target string
	ready  atomic.Int64
}

func startPGCounter(target string) (*pgCounter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pgCounter{ln: ln, target: target}
	go p.serve()
	return p, nil
}

func (p *pgCounter) addr() string { return p.ln.Addr().String() }

func (p *pgCounter) close() { p.ln.Close() }

func (p *pgCounter) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer s.Close()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			p.count(io.TeeReader(s, c))
		}()
	}
}

// count reads the server's messages (a type byte and a length) and counts
// ReadyForQuery ('Z').
func (p *pgCounter) count(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		if hdr[0] == 'Z' {
			p.ready.Add(1)
		}
		n := int64(binary.BigEndian.Uint32(hdr[1:])) - 4
		if _, err := br.Discard(int(n)); err != nil {
			return
		}
	}
}
