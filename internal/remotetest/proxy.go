// Package remotetest holds loopback stand-ins for the remote stores the
// sources read (S3 through gofakes3, and the documented HTTP endpoints of
// Google Drive v3 and the HuggingFace Hub), plus a TCP proxy that drops a
// connection mid-response, for tests of every source against the same
// conformance suite.
package remotetest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// CutProxy forwards TCP connections to a target and can drop one of them
// once it has sent a given number of response bytes: a connection reset
// mid-object, as on a flaky network.
type CutProxy struct {
	Addr   string
	target string
	ln     net.Listener
	after  atomic.Int64 // bytes after which to cut; 0: disarmed
	cuts   atomic.Int64
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// NewCutProxy listens on a loopback port and forwards to target (host:port).
func NewCutProxy(t testing.TB, target string) *CutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// CutOnce arms the proxy: the next connection to send more than n response
// bytes is closed there.
func (p *CutProxy) CutOnce(n int64) { p.after.Store(n) }

// Cuts is the number of connections dropped so far.
func (p *CutProxy) Cuts() int64 { return p.cuts.Load() }

func (p *CutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

func (p *CutProxy) pipe(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	buf := make([]byte, 16<<10)
	var sent int64
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if a := p.after.Load(); a > 0 && sent+int64(n) > a && p.after.CompareAndSwap(a, 0) {
				// Send part of this chunk, then drop the connection.
				cut := max(a-sent, 0)
				_, _ = client.Write(buf[:cut])
				p.cuts.Add(1)
				if tc, ok := client.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, not a clean close
				}
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}
