// Package keys hands out executions' data keys: it makes a key the first
// time a service needs it (wrapped by the provider, stored in Postgres),
// unwraps it for the others, and caches unwrapped keys in memory with a
// bound and a time to live, so the hot path never calls the provider per
// record and a destroyed key stops opening within the TTL everywhere.
package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/store"
)

// Store is where wrapped keys live (store.Store).
type Store interface {
	PutDataKey(ctx context.Context, execution, ref string, wrapped []byte) error
	DataKey(ctx context.Context, execution string) (string, []byte, error)
	DestroyDataKey(ctx context.Context, execution string) error
}

// ErrShredded is returned for an execution whose key was destroyed.
var ErrShredded = errors.New("keys: the execution's data was deleted (its key is destroyed)")

// Manager is the data-key cache in front of a Store and a Provider.
type Manager struct {
	store    Store
	provider crypt.Provider
	ttl      time.Duration
	max      int
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	key     *crypt.DataKey
	expires time.Time
}

// New builds a manager caching at most 1024 keys for 5 minutes.
func New(st Store, p crypt.Provider) *Manager {
	return &Manager{store: st, provider: p, ttl: 5 * time.Minute, max: 1024, now: time.Now, cache: map[string]entry{}}
}

// Get returns the execution's data key, making it when create is set and
// there is none yet.
func (m *Manager) Get(ctx context.Context, execution string, create bool) (*crypt.DataKey, error) {
	now := m.now()
	m.mu.Lock()
	if e, ok := m.cache[execution]; ok && now.Before(e.expires) {
		m.mu.Unlock()
		return e.key, nil
	}
	m.mu.Unlock()
	ref, wrapped, err := m.store.DataKey(ctx, execution)
	if errors.Is(err, store.ErrNotFound) && create {
		_, w, r, gerr := m.provider.GenerateDataKey(ctx, execution)
		if gerr != nil {
			return nil, gerr
		}
		if err := m.store.PutDataKey(ctx, execution, r, w); err != nil {
			return nil, err
		}
		// Another service may have stored its key first: use the stored one.
		ref, wrapped, err = m.store.DataKey(ctx, execution)
	}
	switch {
	case errors.Is(err, store.ErrKeyDestroyed):
		return nil, ErrShredded
	case err != nil:
		return nil, fmt.Errorf("keys: %s: %w", execution, err)
	}
	plain, err := m.provider.Unwrap(ctx, execution, ref, wrapped)
	if err != nil {
		return nil, fmt.Errorf("keys: unwrap the data key of %s: %w", execution, err)
	}
	k, err := crypt.NewDataKey(plain)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.cache) >= m.max {
		for id, e := range m.cache { // drop an expired entry, or any one
			delete(m.cache, id)
			if now.After(e.expires) {
				break
			}
		}
	}
	m.cache[execution] = entry{key: k, expires: now.Add(m.ttl)}
	m.mu.Unlock()
	return k, nil
}

// Destroy destroys the execution's data key and forgets it here.
func (m *Manager) Destroy(ctx context.Context, execution string) error {
	m.Forget(execution)
	return m.store.DestroyDataKey(ctx, execution)
}

// Forget drops the execution's key from this cache.
func (m *Manager) Forget(execution string) {
	m.mu.Lock()
	delete(m.cache, execution)
	m.mu.Unlock()
}
