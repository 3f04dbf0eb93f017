// Package client is the Go client of the REST API and WebSocket feed, used
// by dsctl, the end-to-end tests and the benchmarks.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/api"
)

// Client talks to one API base URL with one bearer token.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// New returns a client.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("api: %d: %s", e.Status, e.Message) }

// Do sends a request and decodes the JSON answer into out.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, c.Base+"/api/v1/datasets"+path, body, out)
}

// DoV1 is Do for paths under /api/v1 (the review queue: /reviews…).
func (c *Client) DoV1(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, c.Base+"/api/v1"+path, body, out)
}

func (c *Client) do(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Submit posts a processing request and returns the execution id.
func (c *Client) Submit(ctx context.Context, req events.Request) (string, error) {
	var out struct {
		ExecutionID string `json:"execution_id"`
	}
	if err := c.Do(ctx, http.MethodPost, "/process", req, &out); err != nil {
		return "", err
	}
	return out.ExecutionID, nil
}

// Status returns GET /status/{id} as a generic map.
func (c *Client) Status(ctx context.Context, id string) (map[string]any, error) {
	var out map[string]any
	return out, c.Do(ctx, http.MethodGet, "/status/"+id, nil, &out)
}

// Statistics returns GET /statistics/{id}.
func (c *Client) Statistics(ctx context.Context, id string) (map[string]any, error) {
	var out map[string]any
	return out, c.Do(ctx, http.MethodGet, "/statistics/"+id, nil, &out)
}

// Message is a WebSocket message, as the API defines it.
type Message = api.Message

// Watch streams an execution's messages to fn, reconnecting with ?since=
// after a dropped connection, until the terminal event, fn's error, or ctx.
// The execution may take a moment to appear after Submit; Watch waits.
func (c *Client) Watch(ctx context.Context, id string, since uint64, fn func(Message) error) error {
	last := since
	moved := time.Now() // when the feed last delivered something
	for {
		before := last
		done, err := c.watchOnce(ctx, id, &last, fn)
		if done || ctx.Err() != nil {
			return err
		}
		if last != before {
			moved = time.Now()
		}
		// Not found yet (just submitted) and unavailable (a restart, a
		// database blip) are worth retrying; other refusals are final.
		var ae *APIError
		if errors.As(err, &ae) && ae.Status != http.StatusNotFound && ae.Status < 500 {
			return err
		}
		if time.Since(moved) > watchPatience {
			return fmt.Errorf("watch %s: giving up after %s without a message: %w", id, watchPatience, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchPatience is how long Watch goes on trying without receiving a
// message (an execution not yet projected, the API restarting) before it
// gives up.
const watchPatience = 2 * time.Minute

// WatchOnce opens one WebSocket connection from ?since=last and reads until
// it closes; it returns true when the terminal event was seen or fn failed.
func (c *Client) watchOnce(ctx context.Context, id string, last *uint64, fn func(Message) error) (bool, error) {
	u := strings.Replace(c.Base, "http", "ws", 1) + "/api/v1/datasets/ws/" + url.PathEscape(id) +
		"?since=" + strconv.FormatUint(*last, 10)
	conn, resp, err := websocket.Dial(ctx, u, c.dialOptions())
	if err != nil {
		if resp != nil {
			return false, &APIError{Status: resp.StatusCode, Message: "websocket dial refused"}
		}
		return false, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	for {
		var m Message
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return true, nil
			}
			return false, err
		}
		if m.Seq <= *last {
			return true, fmt.Errorf("watch %s: duplicate or out-of-order seq %d after %d", id, m.Seq, *last)
		}
		if m.Seq != *last+1 {
			return true, fmt.Errorf("watch %s: gap: seq %d after %d", id, m.Seq, *last)
		}
		*last = m.Seq
		if err := fn(m); err != nil {
			return true, err
		}
		if m.Terminal() {
			return true, nil
		}
	}
}

// Dial opens a raw WebSocket to an execution's feed (tests use it to
// disconnect on purpose).
func (c *Client) Dial(ctx context.Context, id string, since uint64) (*websocket.Conn, error) {
	u := strings.Replace(c.Base, "http", "ws", 1) + "/api/v1/datasets/ws/" + url.PathEscape(id) +
		"?since=" + strconv.FormatUint(since, 10)
	conn, _, err := websocket.Dial(ctx, u, c.dialOptions())
	return conn, err
}

// dialOptions send the token in the Authorization header: a token in a
// URL ends up in proxies' logs (the ?token= parameter is for browsers).
func (c *Client) dialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + c.Token}}}
}
